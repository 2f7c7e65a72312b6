import type { Context, Next } from 'koa';

// zh-CN first; English on request (?lang=en), remembered in a cookie.
export const LANGS = ['zh-CN', 'en'] as const;
export type Lang = (typeof LANGS)[number];

const messages = {
  'zh-CN': {
    brand: '河南省中小企业公共服务平台网络',
    passport: '统一身份认证',
    switchLang: 'English',
    signIn: '登录',
    signInTo: '登录到',
    fromWindow: '您正在从以下窗口平台登录',
    identifier: '用户名 / 手机号 / 电子邮箱',
    password: '密码',
    signInButton: '登录',
    badCredentials: '账号或密码不正确。',
    missingFields: '请填写账号和密码。',
    cancel: '取消',
    consentTitle: '授权确认',
    consentIntro: '以下服务机构请求访问您的信息：',
    consentScopes: '它将获得：',
    allow: '同意',
    deny: '拒绝',
    scope_openid: '您的账号标识',
    scope_profile: '姓名和用户名',
    scope_email: '电子邮箱',
    scope_phone: '手机号码',
    scope_offline_access: '在您离开后继续访问（长期授权）',
    logoutTitle: '退出登录',
    logoutQuestion: '要退出统一身份认证吗？您将在所有窗口平台退出。',
    logoutYes: '是，退出',
    logoutNo: '否，保持登录',
    loggedOut: '您已退出登录',
    loggedOutText: '您已在统一身份认证及其通知的各窗口平台退出。',
    errorTitle: '出错了',
    errorGeneric: '请求无法完成。请返回来源网站重新开始。',
    errorCsrf: '表单已过期或来源不明，请返回重新提交。',
    errorNotFound: '页面不存在。',
    errorInternal: '服务器内部错误，请稍后重试。如果问题持续，请联系平台管理员。',
    errorSessionExpired: '登录会话已过期或无效，请返回来源网站重新登录。',
    errorCode: '错误代码',
    chooseTitle: '选择办事身份',
    chooseIntro: '您本次登录以哪个身份办理业务？选择将用于本次登录访问的所有窗口平台。',
    actAsMyself: '以个人身份',
    continue: '继续',
    notAMember: '您不是所选企业的成员，请重新选择。',
    role_legal_rep: '法定代表人',
    role_admin: '管理员',
    role_operator: '经办人',
    status_pending: '待审核',
    status_verified: '已认证',
    status_suspended: '已暂停',
    scope_enterprise: '您所代表的企业及您在其中的角色',
    accountTitle: '我的账号',
    actingTitle: '本次登录的办事身份',
    switchActing: '切换',
    registerEnterprise: '登记企业',
    registerIntro: '登记后您将成为该企业的法定代表人；企业经窗口平台管理员审核后为“已认证”。',
    registerButton: '提交登记',
    fieldUscc: '统一社会信用代码（创业团队可不填）',
    fieldName: '名称',
    fieldType: '类型',
    fieldRegion: '所在地行政区划代码（6 位，如 410100）',
    fieldIndustry: '行业（可选）',
    type_enterprise: '企业',
    type_social_org: '社会团体',
    type_team: '创业个人或团队',
    type_individual_business: '个体工商户',
    home: '首页',
    homeIntro: '一次登录，即可访问省平台和全部窗口平台。',
  },
  en: {
    brand: 'Henan SME Public Service Platform Network',
    passport: 'Unified Sign-in',
    switchLang: '中文',
    signIn: 'Sign in',
    signInTo: 'Sign in to',
    fromWindow: 'You are signing in from this window platform',
    identifier: 'Username, phone or email',
    password: 'Password',
    signInButton: 'Sign in',
    badCredentials: 'The account or password is not correct.',
    missingFields: 'Enter your account and password.',
    cancel: 'Cancel',
    consentTitle: 'Allow access',
    consentIntro: 'This service organisation asks to access your information:',
    consentScopes: 'It will receive:',
    allow: 'Allow',
    deny: 'Deny',
    scope_openid: 'your account identifier',
    scope_profile: 'your name and username',
    scope_email: 'your email address',
    scope_phone: 'your phone number',
    scope_offline_access: 'access while you are away (long-lived)',
    logoutTitle: 'Sign out',
    logoutQuestion: 'Sign out of the unified sign-in? You will be signed out at every window platform.',
    logoutYes: 'Yes, sign me out',
    logoutNo: 'No, stay signed in',
    loggedOut: 'You are signed out',
    loggedOutText: 'You are signed out of the unified sign-in and of the window platforms it notified.',
    errorTitle: 'Something went wrong',
    errorGeneric: 'The request could not be completed. Go back to the site you came from and start again.',
    errorCsrf: 'The form expired or did not come from this site. Go back and submit it again.',
    errorNotFound: 'This page does not exist.',
    errorInternal: 'Internal server error. Try again later; if it persists, contact the platform administrators.',
    errorSessionExpired: 'The sign-in session expired or is not valid. Go back to the site you came from and sign in again.',
    errorCode: 'Error code',
    chooseTitle: 'Act for',
    chooseIntro: 'Whom do you act for in this sign-in? Every window platform you visit in this sign-in will see this choice.',
    actAsMyself: 'Myself, as an individual',
    continue: 'Continue',
    notAMember: 'You are not a member of the chosen enterprise. Choose again.',
    role_legal_rep: 'legal representative',
    role_admin: 'administrator',
    role_operator: 'operator',
    status_pending: 'pending verification',
    status_verified: 'verified',
    status_suspended: 'suspended',
    scope_enterprise: 'the enterprise you act for and your role in it',
    accountTitle: 'My account',
    actingTitle: 'Acting for, in this sign-in',
    switchActing: 'Switch',
    registerEnterprise: 'Register an enterprise',
    registerIntro: 'You become its legal representative; it is "verified" once a window platform administrator has checked it.',
    registerButton: 'Register',
    fieldUscc: 'Unified Social Credit Code (a team may leave it empty)',
    fieldName: 'Name',
    fieldType: 'Type',
    fieldRegion: 'Administrative division code (6 digits, e.g. 410100)',
    fieldIndustry: 'Industry (optional)',
    type_enterprise: 'enterprise',
    type_social_org: 'social organisation',
    type_team: 'entrepreneur or team',
    type_individual_business: 'individual business',
    home: 'Home',
    homeIntro: 'Sign in once to use the provincial platform and every window platform.',
  },
} satisfies Record<Lang, Record<string, string>>;

export type MessageKey = keyof (typeof messages)['zh-CN'];
export type Translate = (key: MessageKey | string) => string;

export const translator =
  (lang: Lang): Translate =>
  (key) =>
    (messages[lang] as Record<string, string>)[key] ?? key;

const COOKIE = 'lang';

export function langOf(ctx: Context): Lang {
  const asked = ctx.query.lang ?? ctx.cookies.get(COOKIE);
  return asked === 'en' ? 'en' : 'zh-CN';
}

export async function rememberLang(ctx: Context, next: Next): Promise<void> {
  const asked = ctx.query.lang;
  if (asked === 'en' || asked === 'zh-CN') {
    ctx.cookies.set(COOKIE, asked, { httpOnly: true, sameSite: 'lax', maxAge: 365 * 24 * 3600 * 1000, signed: false });
  }
  await next();
}
