import type { Lang } from './http/i18n.ts';

// Every problem a person can be told about their input, by code, in both languages.
// Domain code names a problem by its code and parameters; pages render it in the
// page's language, the CLI, the logs and the admin API's `message` in English (so the
// English texts are the messages as they always were). Parameters are named in braces,
// the same names in both languages (tests/unit/problems.test.ts).

type Texts = { readonly en: string; readonly 'zh-CN': string };

export const PROBLEMS = {
  // What zod says by itself, for a schema that names no problem of its own (parseInput).
  required: { en: 'is required', 'zh-CN': '必须填写' },
  wrong_type: { en: 'has the wrong type', 'zh-CN': '类型不对' },
  unknown_field: { en: 'is not a known field', 'zh-CN': '不是可以填写的项' },
  invalid: { en: 'is not valid', 'zh-CN': '无效' },
  one_of: { en: 'must be one of {values}', 'zh-CN': '必须是以下之一：{values}' },
  each_one_of: { en: 'each must be one of {values}', 'zh-CN': '每一项都必须是以下之一：{values}' },
  too_short: { en: 'must be at least {minimum} characters', 'zh-CN': '至少要有 {minimum} 个字符' },
  too_long: { en: 'must be at most {maximum} characters', 'zh-CN': '最多 {maximum} 个字符' },
  too_few: { en: 'must hold at least {minimum} items', 'zh-CN': '至少要有 {minimum} 项' },
  too_many: { en: 'must hold at most {maximum} items', 'zh-CN': '最多 {maximum} 项' },
  too_small: { en: 'must be at least {minimum}', 'zh-CN': '不能小于 {minimum}' },
  not_above: { en: 'must be more than {minimum}', 'zh-CN': '必须大于 {minimum}' },
  too_big: { en: 'must be at most {maximum}', 'zh-CN': '不能大于 {maximum}' },
  not_empty: { en: 'must not be empty', 'zh-CN': '不能为空' },
  number: { en: 'must be a number', 'zh-CN': '必须是数字' },
  whole_number: { en: 'must be a whole number', 'zh-CN': '必须是整数' },
  zero_or_more: { en: 'must be 0 or more', 'zh-CN': '不能小于 0' },
  true_or_false: { en: 'must be true or false', 'zh-CN': '必须是“是”或“否”' },
  not_json: { en: 'is not valid JSON', 'zh-CN': '不是有效的 JSON' },

  // Text (src/validation/text.ts).
  text: { en: 'must be text', 'zh-CN': '必须是文字' },
  text_broken: { en: 'must be valid Unicode text (it holds a broken character)', 'zh-CN': '必须是有效的文字（其中有残缺的字符）' },
  text_control: {
    en: 'must not contain control characters such as NUL, tabs or line breaks (found {char})',
    'zh-CN': '不能含有控制字符，如空字符、制表符或换行（发现 {char}）',
  },
  text_direction: { en: 'must not contain text direction overrides (found {char})', 'zh-CN': '不能含有改变文字方向的控制符（发现 {char}）' },
  json_member_name: { en: 'a member name {problem}', 'zh-CN': '成员名{problem}' },
  json_member: { en: '{name}: {problem}', 'zh-CN': '成员 {name}：{problem}' },
  client_id: { en: 'must be a client id', 'zh-CN': '必须是客户端标识' },
  client_id_chars: { en: 'must be a client id (letters, digits and . _ ~ : -, at most 200)', 'zh-CN': '必须是客户端标识（字母、数字和 . _ ~ : -，最多 200 个）' },
  key_id: { en: 'must be a key id', 'zh-CN': '必须是密钥标识' },
  key_id_chars: { en: 'must be a key id (letters, digits and . _ ~ : -, at most 200)', 'zh-CN': '必须是密钥标识（字母、数字和 . _ ~ : -，最多 200 个）' },
  session_id: { en: 'must be a session id', 'zh-CN': '必须是会话标识' },
  session_id_chars: { en: 'must be a session id (letters, digits and . _ ~ : -, at most 200)', 'zh-CN': '必须是会话标识（字母、数字和 . _ ~ : -，最多 200 个）' },

  // Windows, their APIs and clients.
  region: { en: 'must be a 6-digit administrative division code such as 410100', 'zh-CN': '必须是 6 位行政区划代码，如 410100' },
  cluster_required: { en: 'is required for an industry window (the industry cluster it serves)', 'zh-CN': '行业窗口必须填写（它服务的产业集群）' },
  cluster_only_industry: { en: 'is only for industry windows', 'zh-CN': '只有行业窗口才填写' },
  region_required: { en: 'is required for province, comprehensive and industry windows', 'zh-CN': '省级、综合和行业窗口必须填写' },
  window_name_taken: { en: 'a window with this name exists already', 'zh-CN': '已有同名的窗口' },
  window_not_found: { en: 'no window with id {id}', 'zh-CN': '没有编号为 {id} 的窗口' },
  window_id: { en: 'must be a window id (a number)', 'zh-CN': '必须是窗口编号（数字）' },
  window_in_path: { en: 'is not a known field (the window is the one in the path)', 'zh-CN': '不是可以填写的项（窗口由地址指定）' },
  api_id: { en: 'must be an API id (a number)', 'zh-CN': '必须是接口编号（数字）' },
  api_not_found: { en: 'no API with id {id}', 'zh-CN': '没有编号为 {id} 的接口' },
  api_taken: { en: 'an API with the identifier {identifier} exists already', 'zh-CN': '标识为 {identifier} 的接口已经存在' },
  scope_name: { en: 'each must be a scope name', 'zh-CN': '每一项都必须是权限范围的名称' },
  scope_chars: { en: 'each must be 1 to 64 of a-z, 0-9 and _ : . - (such as orders:read)', 'zh-CN': '每一项都必须由 1 到 64 个 a-z、0-9 和 _ : . - 组成（如 orders:read）' },
  scope_reserved: { en: '"{scope}" is an OpenID Connect scope, not an API\'s (choose another name)', 'zh-CN': '“{scope}” 是 OpenID Connect 的权限范围，不属于接口（请换一个名称）' },
  scopes_list: { en: 'must be a list of scope names', 'zh-CN': '必须是权限范围名称的列表' },
  scopes_min: { en: 'must name at least one scope', 'zh-CN': '至少要有一个权限范围' },
  scopes_max: { en: 'must hold at most {maximum} scopes', 'zh-CN': '最多 {maximum} 个权限范围' },
  scopes_twice: { en: 'must not name a scope twice', 'zh-CN': '不能重复同一个权限范围' },
  scopes_openid: { en: 'must include openid', 'zh-CN': '必须包含 openid' },
  seconds: { en: 'must be a number of seconds', 'zh-CN': '必须是秒数' },
  whole_seconds: { en: 'must be a whole number of seconds', 'zh-CN': '必须是整秒数' },
  seconds_min: { en: 'must be at least {minimum} seconds', 'zh-CN': '至少 {minimum} 秒' },
  token_ttl_max: { en: 'must be at most {maximum} seconds (a day)', 'zh-CN': '最多 {maximum} 秒（一天）' },
  grace_seconds: { en: 'must be a whole number of seconds from 0 to {maximum} (30 days)', 'zh-CN': '必须是 0 到 {maximum} 之间的整秒数（30 天）' },
  grace_hours: { en: 'must be a number of hours, such as 24', 'zh-CN': '必须是小时数，如 24' },
  uri_not_absolute: { en: '"{uri}" is not an absolute URI', 'zh-CN': '“{uri}” 不是完整的地址' },
  uri_fragment: { en: '"{uri}" must not have a fragment (#...)', 'zh-CN': '“{uri}” 不能带片段（#…）' },
  uri_not_https: {
    en: '"{uri}" must use https (http is allowed only for localhost and loopback addresses)',
    'zh-CN': '“{uri}” 必须使用 https（只有本机和回环地址可以使用 http）',
  },
  uri_credentials: { en: '"{uri}" must not carry a user name or password', 'zh-CN': '“{uri}” 不能带用户名或密码' },
  uris_max: { en: 'must hold at most {maximum} URIs', 'zh-CN': '最多 {maximum} 个地址' },
  jwk_kty: { en: 'must be an RSA or EC public key (kty RSA or EC)', 'zh-CN': '必须是 RSA 或 EC 公钥（kty 为 RSA 或 EC）' },
  jwk_private: { en: 'must be a public key: remove its private parts ({members})', 'zh-CN': '必须是公钥：请删去其中的私钥部分（{members}）' },
  jwk_invalid: { en: 'is not a valid {kty} public key', 'zh-CN': '不是有效的 {kty} 公钥' },
  jwks_list: { en: 'must be a list of keys', 'zh-CN': '必须是密钥的列表' },
  jwks_min: { en: 'must hold at least one key', 'zh-CN': '至少要有一个密钥' },
  jwks_set: { en: 'must be a JWK set: { "keys": [...] }', 'zh-CN': '必须是 JWK 集合：{ "keys": [...] }' },
  grant_types_min: { en: 'must name at least one grant type', 'zh-CN': '至少要有一种授权类型' },
  redirect_uri_needed: { en: 'at least one redirect URI is needed for authorization_code', 'zh-CN': '使用 authorization_code 至少要有一个回调地址' },
  redirect_uris_need_code: { en: 'redirect URIs need the authorization_code grant', 'zh-CN': '有回调地址就必须使用 authorization_code 授权' },
  refresh_needs_code: { en: 'refresh_token needs authorization_code', 'zh-CN': 'refresh_token 必须与 authorization_code 一起使用' },
  public_client_credentials: {
    en: 'client_credentials needs a client that can authenticate (not auth method none)',
    'zh-CN': 'client_credentials 只能用于能认证自身的客户端（认证方式不能是 none）',
  },
  jwks_needed: { en: 'private_key_jwt needs the client’s public keys: jwks (inline) or jwksUri', 'zh-CN': 'private_key_jwt 需要客户端的公钥：jwks（直接填写）或 jwksUri' },
  jwks_either: { en: 'give either jwks or jwksUri, not both', 'zh-CN': 'jwks 和 jwksUri 只能填写一个' },
  only_private_key_jwt: { en: 'is only used with private_key_jwt', 'zh-CN': '只用于 private_key_jwt' },
  client_not_found: { en: 'no client with id {id}', 'zh-CN': '没有标识为 {id} 的客户端' },
  client_internal: { en: 'is managed by the server itself', 'zh-CN': '由服务器自己管理' },
  no_secret: { en: 'a {method} client has no secret to rotate', 'zh-CN': '{method} 客户端没有可轮换的密钥' },

  // Enterprises and their members.
  uscc_invalid: { en: '"{uscc}" is not a valid Unified Social Credit Code: {reasons}', 'zh-CN': '“{uscc}” 不是有效的统一社会信用代码：{reasons}' },
  uscc_length: { en: 'must be 18 characters, not {length}', 'zh-CN': '应为 18 位，而不是 {length} 位' },
  uscc_character: {
    en: 'character {position} ("{character}") is not allowed: only 0-9 and A-Y without I, O, S, V, Z',
    'zh-CN': '第 {position} 位（“{character}”）不允许：只能是 0-9 和 A-Y（不含 I、O、S、V、Z）',
  },
  uscc_org_check: { en: 'the organisation code check (character 17) should be {expected}', 'zh-CN': '组织机构代码校验码（第 17 位）应为 {expected}' },
  uscc_check: { en: 'the check character (character 18) should be {expected}', 'zh-CN': '校验码（第 18 位）应为 {expected}' },
  uscc_authority: { en: 'registration authority "{authority}" is not one of 1, 5, 9, Y', 'zh-CN': '登记管理部门代码“{authority}”不是 1、5、9、Y 之一' },
  uscc_required: { en: 'is required (only an entrepreneur team may have none yet)', 'zh-CN': '必须填写（只有创业团队可以暂时没有）' },
  uscc_taken: { en: '{uscc} is already registered', 'zh-CN': '{uscc} 已经登记过了' },
  team_taken: { en: 'a team of this name is already registered in this region', 'zh-CN': '本地区已经登记了同名的团队' },
  enterprise_not_found: { en: 'no enterprise with id {id}', 'zh-CN': '没有编号为 {id} 的企业' },
  enterprise_not_found_by: { en: 'no enterprise with id or USCC "{value}"', 'zh-CN': '没有编号或统一社会信用代码为“{value}”的企业' },
  enterprise_id: { en: 'must be an enterprise id', 'zh-CN': '必须是企业编号' },
  already_member: { en: 'is already a member of this enterprise', 'zh-CN': '已经是该企业的成员' },
  not_member: { en: 'you are not a member of this enterprise', 'zh-CN': '您不是该企业的成员' },
  import_unknown_column: { en: 'unknown column "{column}" in the header: the columns are {columns}', 'zh-CN': '表头中的列“{column}”无法识别：可用的列是 {columns}' },
  import_missing_column: { en: 'the header has no "{column}" column: the columns are {columns}', 'zh-CN': '表头中没有“{column}”列：可用的列是 {columns}' },
  import_column_twice: { en: 'the header names a column twice', 'zh-CN': '表头中有重复的列' },
  import_empty: { en: 'is empty: it needs a header row ({columns})', 'zh-CN': '是空的：需要一行表头（{columns}）' },

  // Accounts, passwords, authenticators.
  username: { en: 'must be 3-32 characters: a letter, then letters, digits, _ . or -', 'zh-CN': '必须是 3 到 32 个字符：以字母开头，其后是字母、数字、_ . 或 -' },
  phone: { en: 'must be a mainland mobile number such as 13800138000', 'zh-CN': '必须是中国大陆手机号码，如 13800138000' },
  email: { en: 'must be an email address such as name@example.com', 'zh-CN': '必须是电子邮箱地址，如 name@example.com' },
  contact_taken: { en: 'is already used by another account', 'zh-CN': '已被其他账号使用' },
  account_id: { en: 'must be an account id', 'zh-CN': '必须是账号编号' },
  account_or_username: { en: 'must be an account id or username', 'zh-CN': '必须是账号编号或用户名' },
  no_such_account: { en: 'no such account', 'zh-CN': '没有这个账号' },
  account_not_found: { en: 'no account with id {id}', 'zh-CN': '没有编号为 {id} 的账号' },
  username_of_other_duty: { en: "is the username of the {earlier} as well: each duty is its own person's account", 'zh-CN': '与 {earlier} 的用户名相同：每项职责须由不同的人以各自的账号担任' },
  administrator_not_found: { en: 'no administrator "{value}"', 'zh-CN': '没有管理员“{value}”' },
  administrators_exist: {
    en: 'the province has administrators already ({held}); nothing was created. Further administrators are made with account create and admin grant',
    'zh-CN': '本省已有管理员（{held}），未创建任何账号。其他管理员请用 account create 和 admin grant 创建',
  },
  account_not_found_by: { en: 'no account "{value}"', 'zh-CN': '没有账号“{value}”' },
  account_not_found_cli: { en: 'no account with id or username "{value}"', 'zh-CN': '没有编号或用户名为“{value}”的账号' },
  password_classes: {
    en: 'must mix at least {count} of: lower-case letters, upper-case letters, digits, other characters',
    'zh-CN': '必须至少包含以下 {count} 类字符：小写字母、大写字母、数字、其他字符',
  },
  password_common: { en: 'is one of the most common passwords', 'zh-CN': '是最常见的密码之一，不能使用' },
  password_personal: { en: 'must not contain your username, phone number or email', 'zh-CN': '不能包含您的用户名、手机号码或电子邮箱' },
  password_reused: { en: 'must not be one of your last {count} passwords', 'zh-CN': '不能与最近 {count} 次用过的密码相同' },
  totp_form: { en: 'the enrolment form is not valid: start again', 'zh-CN': '绑定表单已失效：请重新开始' },
  totp_code: { en: 'is not the code your authenticator shows now', 'zh-CN': '不是身份验证器当前显示的验证码' },
  totp_exists: { en: 'this account already has an authenticator: remove it first', 'zh-CN': '该账号已经绑定了身份验证器：请先移除' },

  // Administrators' roles.
  window_admin_window: { en: 'is needed for window_admin, and only for it', 'zh-CN': 'window_admin 必须填写，其他角色不填' },
  separation_of_duties: { en: '{role} cannot be held together with {other} (separation of duties)', 'zh-CN': '{role} 不能与 {other} 由同一人担任（职责分离）' },
  role_held: { en: 'the account holds {role} already', 'zh-CN': '该账号已经担任 {role}' },
  role_held_window: { en: 'the account holds {role} for window {windowId} already', 'zh-CN': '该账号已经担任窗口 {windowId} 的 {role}' },
  role_not_held: { en: 'the account does not hold {role}', 'zh-CN': '该账号没有担任 {role}' },
  role_not_held_window: { en: 'the account does not hold {role} for window {windowId}', 'zh-CN': '该账号没有担任窗口 {windowId} 的 {role}' },
  grants_window_admin: { en: 'only a system_admin grants and revokes window_admin', 'zh-CN': '只有 system_admin 能授予和撤销 window_admin' },
  grants_province_roles: { en: 'only a security_admin grants and revokes {roles}', 'zh-CN': '只有 security_admin 能授予和撤销 {roles}' },
  own_roles: { en: 'administrators do not change their own roles', 'zh-CN': '管理员不能修改自己的角色' },
  disable_self: { en: 'administrators do not disable themselves', 'zh-CN': '管理员不能停用自己' },
  not_your_window: { en: 'you do not administer window {windowId}', 'zh-CN': '您不管理窗口 {windowId}' },
  needs_roles: { en: 'this needs one of the roles {roles}', 'zh-CN': '需要以下角色之一：{roles}' },
  needs_role: { en: 'this needs the role {roles}', 'zh-CN': '需要角色 {roles}' },
  no_body: { en: 'this request takes no body', 'zh-CN': '此请求不接受请求体' },
  no_query: { en: 'this request takes no query parameters', 'zh-CN': '此请求不接受查询参数' },

  // Signing keys.
  key_delay: { en: 'must be a whole number of seconds, 0 or more', 'zh-CN': '必须是不小于 0 的整秒数' },
  key_not_live: { en: 'no live key with kid {kid}', 'zh-CN': '没有 kid 为 {kid} 的在用密钥' },
  key_not_signing: { en: 'only signing keys are retired here', 'zh-CN': '这里只停用签名密钥' },
  key_signs_now: {
    en: '{kid} is the {alg} key that signs now: rotate first, and retire it once the new key signs',
    'zh-CN': '{kid} 是当前签名用的 {alg} 密钥：请先轮换，新密钥开始签名后再停用它',
  },

  // The audit trail.
  event_type: { en: 'must be an event type, e.g. sign_in', 'zh-CN': '必须是事件类型，如 sign_in' },
  actor_id: { en: 'must be an actor id', 'zh-CN': '必须是操作者标识' },
  success_or_failure: { en: 'must be success or failure', 'zh-CN': '必须是 success 或 failure' },
  audit_date: {
    en: 'must be a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM[:SS][Z|+08:00])',
    'zh-CN': '必须是日期（YYYY-MM-DD）或日期加时间（YYYY-MM-DDTHH:MM[:SS][Z|+08:00]）',
  },
  not_a_date: {
    en: '"{value}" is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM[:SS][Z|+08:00])',
    'zh-CN': '“{value}” 不是日期（YYYY-MM-DD）或日期加时间（YYYY-MM-DDTHH:MM[:SS][Z|+08:00]）',
  },
  to_after_from: { en: 'must be later than from', 'zh-CN': '必须晚于开始时间' },
  purge_too_recent: {
    en: 'must be no later than {limit}: records are kept {days} days (AUDIT_RETENTION_DAYS)',
    'zh-CN': '不能晚于 {limit}：记录要保留 {days} 天（AUDIT_RETENTION_DAYS）',
  },
  year: { en: 'must be a year such as 2026', 'zh-CN': '必须是年份，如 2026' },
  year_min: { en: 'must be {minimum} or later', 'zh-CN': '不能早于 {minimum} 年' },
  year_max: { en: 'must be {maximum} or earlier', 'zh-CN': '不能晚于 {maximum} 年' },
  days: { en: 'must be a number of days', 'zh-CN': '必须是天数' },
} as const satisfies Record<string, Texts>;

export type ProblemCode = keyof typeof PROBLEMS;

// A parameter is a value to show, or the problems it is made of (a USCC's reasons),
// rendered in the same language.
export type Param = string | number | Problem[];
export type Params = Record<string, Param>;
export type Problem = { code: ProblemCode; params: Params };

// The names a text holds in braces, so a code is given exactly the parameters it shows
// (a brace around other text, as in a JWK set's `{ "keys": [...] }`, names none).
type NamesIn<S extends string> = S extends `${string}{${infer Name}}${infer Rest}` ? (Name extends `${string} ${string}` ? never : Name) | NamesIn<Rest> : never;
export type ParamsOf<C extends ProblemCode> = Record<NamesIn<(typeof PROBLEMS)[C]['en']>, Param>;

export const isProblemCode = (value: unknown): value is ProblemCode => typeof value === 'string' && Object.hasOwn(PROBLEMS, value);

// A code as a zod message, checked by the compiler; parseInput reads it back.
export const problemCode = (code: ProblemCode): string => code;

export const problem = <C extends ProblemCode>(code: C, ...[params]: keyof ParamsOf<C> extends never ? [] : [ParamsOf<C>]): Problem => ({ code, params: params ?? {} });

const LIST_SEPARATOR: Record<Lang, string> = { en: '; ', 'zh-CN': '；' };

export function problemText(p: Problem, lang: Lang): string {
  const params = p.params as Record<string, Param | undefined>;
  return PROBLEMS[p.code][lang].replace(/\{(\w+)\}/g, (m, name: string) => {
    const value = params[name];
    if (value === undefined) return m;
    return Array.isArray(value) ? value.map((inner) => problemText(inner, lang)).join(LIST_SEPARATOR[lang]) : String(value);
  });
}

export const englishText = (p: Problem): string => problemText(p, 'en');

// What people see a field called: a form's label where the page has one.
export const FIELD_LABELS = {
  input: { en: 'input', 'zh-CN': '输入' },
  account: { en: 'account', 'zh-CN': '账号' },
  accountId: { en: 'account', 'zh-CN': '账号' },
  username: { en: 'username', 'zh-CN': '用户名' },
  displayName: { en: 'name', 'zh-CN': '姓名' },
  identifier: { en: 'identifier', 'zh-CN': '接口标识' },
  phone: { en: 'phone', 'zh-CN': '手机号码' },
  email: { en: 'email', 'zh-CN': '电子邮箱' },
  password: { en: 'password', 'zh-CN': '密码' },
  code: { en: 'code', 'zh-CN': '验证码' },
  totp: { en: 'authenticator', 'zh-CN': '身份验证器' },
  role: { en: 'role', 'zh-CN': '角色' },
  enterprise: { en: 'enterprise', 'zh-CN': '企业' },
  enterpriseId: { en: 'enterprise', 'zh-CN': '企业' },
  uscc: { en: 'USCC', 'zh-CN': '统一社会信用代码' },
  name: { en: 'name', 'zh-CN': '名称' },
  type: { en: 'type', 'zh-CN': '类型' },
  region: { en: 'region', 'zh-CN': '行政区划代码' },
  industry: { en: 'industry', 'zh-CN': '行业' },
  status: { en: 'status', 'zh-CN': '状态' },
  file: { en: 'file', 'zh-CN': '文件' },
  window: { en: 'window', 'zh-CN': '窗口' },
  windowId: { en: 'window', 'zh-CN': '窗口' },
  kind: { en: 'kind', 'zh-CN': '窗口类别' },
  cluster: { en: 'cluster', 'zh-CN': '产业集群' },
  directlyAdministered: { en: 'directly administered', 'zh-CN': '直管' },
  client: { en: 'client', 'zh-CN': '客户端' },
  clientId: { en: 'client', 'zh-CN': '客户端' },
  redirectUris: { en: 'redirect URIs', 'zh-CN': '回调地址' },
  postLogoutRedirectUris: { en: 'post-logout redirect URIs', 'zh-CN': '退出后跳转地址' },
  backchannelLogoutUri: { en: 'back-channel logout URI', 'zh-CN': '后端通道退出地址' },
  frontchannelLogoutUri: { en: 'front-channel logout URI', 'zh-CN': '前端通道退出地址' },
  jwksUri: { en: 'JWKS URI', 'zh-CN': '公钥集地址' },
  jwks: { en: 'JWKS', 'zh-CN': 'JWKS 公钥集' },
  authMethod: { en: 'auth method', 'zh-CN': '客户端认证方式' },
  grantTypes: { en: 'grant types', 'zh-CN': '授权类型' },
  scopes: { en: 'scopes', 'zh-CN': '权限范围' },
  thirdParty: { en: 'third party', 'zh-CN': '第三方应用' },
  graceSeconds: { en: 'grace period', 'zh-CN': '旧密钥宽限期' },
  graceHours: { en: 'grace period (hours)', 'zh-CN': '旧密钥宽限期（小时）' },
  apiId: { en: 'API', 'zh-CN': '接口' },
  accessTokenTtlSeconds: { en: 'token lifetime', 'zh-CN': '令牌有效期' },
  otherWindows: { en: 'other windows', 'zh-CN': '其他窗口平台' },
  kid: { en: 'key', 'zh-CN': '密钥' },
  delay: { en: 'delay', 'zh-CN': '延迟' },
  delaySeconds: { en: 'delay (seconds)', 'zh-CN': '延迟（秒）' },
  q: { en: 'search', 'zh-CN': '搜索' },
  event: { en: 'event', 'zh-CN': '事件' },
  actor: { en: 'actor', 'zh-CN': '操作者' },
  outcome: { en: 'outcome', 'zh-CN': '结果' },
  limit: { en: 'limit', 'zh-CN': '条数' },
  from: { en: 'from', 'zh-CN': '开始时间' },
  to: { en: 'to', 'zh-CN': '结束时间' },
  before: { en: 'before', 'zh-CN': '截止时间' },
  year: { en: 'year', 'zh-CN': '年份' },
  days: { en: 'days', 'zh-CN': '天数' },
} as const satisfies Record<string, Texts>;

const POSITION: Record<Lang, (n: number) => string> = { en: (n) => ` (no. ${n})`, 'zh-CN': (n) => `（第 ${n} 个）` };

// A field path as people read it: redirectUris.0 is the first redirect URI. A field no
// form shows (a member the API was sent by mistake) keeps its path.
export function fieldLabel(field: string, lang: Lang): string {
  const [head = field, ...rest] = field.split('.');
  if (!Object.hasOwn(FIELD_LABELS, head)) return field;
  const label = FIELD_LABELS[head as keyof typeof FIELD_LABELS][lang];
  const position = rest.find((part) => /^\d+$/.test(part));
  return position === undefined ? label : label + POSITION[lang](Number(position) + 1);
}

// One problem with a field, as a page shows it: 密码：是最常见的密码之一，不能使用。
export function describeIssue(issue: Problem & { field: string }, lang: Lang): string {
  const text = problemText(issue, lang);
  return lang === 'en' ? `${fieldLabel(issue.field, lang)}: ${text}` : `${fieldLabel(issue.field, lang)}：${text}。`;
}
