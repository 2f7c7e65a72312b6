import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { portOpen, ROOT } from './processes.ts';
import { eventually } from './wait.ts';

// Debian's nginx in front of test nodes, configured by deploy/nginx/sme-passport.conf
// itself: its "# EDIT:" lines are rewritten for this machine, nothing else is changed.

export const NGINX = '/usr/sbin/nginx';
export const OPENSSL = '/usr/bin/openssl';

export const SITE_FILE = path.join(ROOT, 'deploy/nginx/sme-passport.conf');

export type Certificate = { certFile: string; keyFile: string; pem: string };

// A self-signed certificate for localhost, its own CA.
export function selfSignedCertificate(dir: string): Certificate {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { certFile, keyFile, pem: fs.readFileSync(certFile, 'utf8') };
}

// This process's fetch (and openid-client's) trusts the certificate from now on.
export function trustInThisProcess(certificate: Certificate): void {
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), certificate.pem]);
}

// dir: nginx's own folder (configuration, pid, logs, temporary files).
export type Site = { httpsPort: number; httpPort: number; nodes: string[]; certificate: Certificate; dir: string };


// The site file for this machine: every "# EDIT:" line rewritten, the IPv6 listens left out.
export function renderSite(site: Site): string {
  const seen = new Set<string>();
  const lines = fs.readFileSync(SITE_FILE, 'utf8').split('\n').flatMap((line) => {
    const mark = /;\s*#\s*EDIT:\s*(.+)$/.exec(line)?.[1]!.trim();
    if (!mark) return [line];
    seen.add(mark);
    const ipv6 = line.includes('[::]');
    switch (mark) {
      case 'node':
        // The first node line stands for all of them, with its parameters.
        if (seen.has('node rendered')) return [];
        seen.add('node rendered');
        return site.nodes.map((address) => line.replace(/server \S+/, `server ${address}`));
      case 'listen https':
        return ipv6 ? [] : [line.replace(/listen 443/, `listen 127.0.0.1:${site.httpsPort}`)];
      case 'listen http':
        return ipv6 ? [] : [line.replace(/listen 80/, `listen 127.0.0.1:${site.httpPort}`)];
      case 'name':
        return [line.replace(/server_name \S+;/, 'server_name localhost;')];
      case 'certificate':
        return [line.replace(/ssl_certificate \S+;/, `ssl_certificate ${site.certificate.certFile};`)];
      case 'access log':
        return [line.replace(/access_log \S+/, `access_log ${site.dir}/sme-passport.access.log`)];
      case 'certificate key':
        return [line.replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${site.certificate.keyFile};`)];
      default:
        throw new Error(`${SITE_FILE}: unknown "# EDIT: ${mark}"`);
    }
  });
  const expected = ['node', 'listen https', 'listen http', 'name', 'access log', 'certificate', 'certificate key'];
  const missing = expected.filter((mark) => !seen.has(mark));
  if (missing.length > 0) throw new Error(`${SITE_FILE}: no "# EDIT: ${missing.join('", "')}" line`);
  return lines.join('\n');
}

// cpuSeconds: the CPU time nginx's processes (master and workers) have used so far.
export type Nginx = { dir: string; output: () => string; accessLog: () => string; cpuSeconds: () => number; stop(): Promise<void> };

// utime + stime of a process and of its children still running, from /proc (Linux; ticks of 1/100 s).
function processTreeCpuSeconds(pid: number): number {
  const stat = (p: string) => {
    try {
      // The fields after the command name, which is in parentheses and may hold spaces.
      return fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    } catch {
      return undefined;
    }
  };
  let ticks = 0;
  for (const p of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const fields = stat(p);
    // fields[1] is the parent's pid; [11] and [12] are utime and stime.
    if (fields && (Number(p) === pid || Number(fields[1]) === pid)) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

// nginx as this user, everything it writes in its own folder; resolves once it accepts
// connections on the HTTPS port.
export async function startNginx(site: Site): Promise<Nginx> {
  const { dir } = site;
  fs.writeFileSync(path.join(dir, 'sme-passport.conf'), renderSite(site));
  // Debian's nginx.conf, as far as a site relies on it; the paths nginx writes are here.
  const main = `
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
worker_processes 2;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/sme-passport.conf;
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), main);
  const child = spawn(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const readLog = (file: string) => (fs.existsSync(path.join(dir, file)) ? fs.readFileSync(path.join(dir, file), 'utf8') : '');
  const nginx: Nginx = {
    dir,
    output: () => output + readLog('error.log'),
    accessLog: () => readLog('sme-passport.access.log'),
    cpuSeconds: () => processTreeCpuSeconds(child.pid!),
    stop: () => {
      // SIGQUIT: nginx's graceful stop.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      return closed;
    },
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
      return portOpen(site.httpsPort);
    });
  } catch (err) {
    await nginx.stop();
    throw new Error(`nginx did not start: ${(err as Error).message}\n${nginx.output()}`);
  }
  return nginx;
}

export const tempDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
