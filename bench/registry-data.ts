import { completeUscc } from '../src/enterprises/uscc.ts';

// Synthetic registry rows for the benchmark: distinct, valid USCCs and plausible
// Chinese names, the same on every run.

const CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const REGIONS = ['410100', '410200', '410300', '410400', '410500', '410700', '411000', '411300', '411500', '411700'];
const WORDS = ['华', '豫', '中', '原', '宏', '达', '新', '科', '信', '通', '恒', '瑞', '鑫', '盛', '丰', '源', '泰', '安', '金', '星'];
const TRADES = ['科技', '机械', '食品', '纺织', '物流', '建材', '电子', '化工', '农业', '软件'];

// The nth organisation code body: 8 characters of the USCC alphabet.
function orgBody(n: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) {
    s = CHARSET[n % 31]! + s;
    n = Math.floor(n / 31);
  }
  return s;
}

export function enterpriseRow(n: number) {
  const region = REGIONS[n % REGIONS.length]!;
  const name = `${WORDS[n % 20]}${WORDS[Math.floor(n / 20) % 20]}${WORDS[Math.floor(n / 400) % 20]}${TRADES[Math.floor(n / 8000) % 10]}有限公司${n}`;
  return { uscc: completeUscc(`91${region}${orgBody(n)}`), name, type: 'enterprise', region, industry: TRADES[n % 10]! };
}

export function* enterpriseCsv(count: number): Generator<string> {
  yield 'uscc,name,type,region,industry\n';
  for (let n = 0; n < count; n++) {
    const r = enterpriseRow(n);
    yield `${r.uscc},${r.name},${r.type},${r.region},${r.industry}\n`;
  }
}
