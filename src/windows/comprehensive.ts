import type { NewWindow } from './windows.ts';

// The provincial platform and the 28 comprehensive windows with their division codes
// (DOMAIN.md). Whether a county is still directly administered is unverified: it is
// data on the window, which administrators can change.

export const PROVINCE: NewWindow = { kind: 'province', name: '河南省中小企业公共服务平台', region: '410000' };

const cities: Array<[string, string]> = [
  ['郑州市', '410100'], ['开封市', '410200'], ['洛阳市', '410300'], ['平顶山市', '410400'],
  ['安阳市', '410500'], ['鹤壁市', '410600'], ['新乡市', '410700'], ['焦作市', '410800'],
  ['濮阳市', '410900'], ['许昌市', '411000'], ['漯河市', '411100'], ['三门峡市', '411200'],
  ['南阳市', '411300'], ['商丘市', '411400'], ['信阳市', '411500'], ['周口市', '411600'],
  ['驻马店市', '411700'], ['济源市', '419001'],
];

const counties: Array<[string, string]> = [
  ['巩义市', '410181'], ['兰考县', '410225'], ['汝州市', '410482'], ['滑县', '410526'],
  ['长垣市', '410783'], ['邓州市', '411381'], ['永城市', '411481'], ['固始县', '411525'],
  ['鹿邑县', '411628'], ['新蔡县', '411729'],
];

export const COMPREHENSIVE_WINDOWS: NewWindow[] = [
  ...cities.map(([place, region]): NewWindow => ({ kind: 'comprehensive', name: `${place}综合窗口平台`, region })),
  ...counties.map(([place, region]): NewWindow => ({ kind: 'comprehensive', name: `${place}综合窗口平台`, region, directlyAdministered: true })),
];
