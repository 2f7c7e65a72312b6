import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '../../src/config.ts';
import { ROOT } from '../helpers/processes.ts';

// The deployment files (deploy/) against what the server reads: every setting is
// documented in README.md's Configuration table and present in the example environment
// file, whose values the server accepts; the systemd unit has its key options.

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

// `NAME=value` and `#NAME=value` lines; values unquoted as systemd does.
function exampleSettings(): { set: Map<string, string>; commented: Map<string, string> } {
  const set = new Map<string, string>();
  const commented = new Map<string, string>();
  for (const line of read('deploy/sme-passport.env.example').split('\n')) {
    const m = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    (m[1] ? commented : set).set(m[2]!, m[3]!.replace(/^"(.*)"$/, '$1'));
  }
  return { set, commented };
}

function readmeVariables(): string[] {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 1));
  return [...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]!);
}

describe('the example environment file and the Configuration table', () => {
  const schema = Object.keys(envSchema.shape);
  const { set, commented } = exampleSettings();
  const example = [...set.keys(), ...commented.keys()];

  it('name every variable the server reads, and nothing else', () => {
    expect(schema.filter((v) => !readmeVariables().includes(v)), 'missing from README.md, "Configuration"').toEqual([]);
    expect(readmeVariables().filter((v) => !example.includes(v)), 'missing from deploy/sme-passport.env.example').toEqual([]);
    expect(example.filter((v) => !readmeVariables().includes(v)), 'in the example, not in the README table').toEqual([]);
    expect(new Set(example).size, 'a variable twice in the example').toBe(example.length);
  });

  it('hold values the server accepts in production, the commented ones included', () => {
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    const settings = Object.fromEntries(set);
    expect(() => loadConfig({ ...settings, MASTER_KEY: masterKey })).not.toThrow();
    // The logo is a file on the server; the rest may be uncommented as they are.
    const { LOGO_FILE: _logo, ...all } = Object.fromEntries(commented);
    const config = loadConfig({ ...settings, ...all, MASTER_KEY: masterKey });
    expect(config).toMatchObject({ production: true, trustProxy: true, issuer: 'https://passport.example.gov.cn', dataDir: '/var/lib/sme-passport' });
  });
});

describe('the systemd unit', () => {
  const unitFile = 'deploy/systemd/sme-passport@.service';
  const options = new Map<string, string[]>();
  for (const line of read(unitFile).split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) options.set(m[1]!, [...(options.get(m[1]!) ?? []), m[2]!]);
  }
  const option = (name: string) => options.get(name)?.at(-1);

  it('runs a node as its own user, restarted on failure, stopped by SIGTERM with time for its grace', () => {
    expect(option('EnvironmentFile')).toBe('/etc/sme-passport/sme-passport.env');
    expect(option('Environment')).toBe('PORT=%i');
    expect(option('User')).toBe('sme-passport');
    expect(option('Restart')).toBe('on-failure');
    expect(option('KillSignal')).toBe('SIGTERM');
    // Above the default SHUTDOWN_GRACE_SECONDS (25).
    expect(Number.parseInt(option('TimeoutStopSec')!, 10)).toBeGreaterThan(25);
    expect(option('StateDirectory')).toBe('sme-passport');
    expect(exampleSettings().set.get('DATA_DIR')).toBe('/var/lib/sme-passport');
  });

  it('is hardened, without MemoryDenyWriteExecute (V8 compiles code at run time)', () => {
    expect(Object.fromEntries([...options].map(([k, v]) => [k, v.at(-1)]))).toMatchObject({
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      NoNewPrivileges: 'yes',
      CapabilityBoundingSet: '',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      SystemCallFilter: '@system-service',
    });
    expect(options.has('MemoryDenyWriteExecute')).toBe(false);
    expect(options.has('ReadWritePaths')).toBe(false);
  });

  // systemd-analyze checks every option and the command; it runs here on this checkout.
  it.skipIf(!fs.existsSync('/usr/bin/systemd-analyze'))('passes systemd-analyze verify (when installed)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-unit-'));
    try {
      const unit = path.join(dir, 'sme-passport@3000.service');
      fs.writeFileSync(unit, read(unitFile).replaceAll('/opt/sme-passport/', ROOT));
      const verified = spawnSync('/usr/bin/systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      expect({ status: verified.status, output: verified.stdout + verified.stderr }).toEqual({ status: 0, output: '' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
