import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

// Debian's chromium (which .ci/run installs), never a downloaded browser. Where it is
// not installed, the browser tests are skipped, so `npm test` passes on a bare machine.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM_PATH)`);

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });

// A page as a person of the platform opens it: their browser asks for Chinese
// (Accept-Language zh-CN), which the pages follow when no other choice was made.
export const chinesePage = (browser: Browser, options: Parameters<Browser['newPage']>[0] = {}) => browser.newPage({ locale: 'zh-CN', ...options });
