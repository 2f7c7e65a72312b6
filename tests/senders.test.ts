import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { createSender } from '../src/messages/senders.ts';
import { loadConfig } from '../src/config.ts';
import { testDatabase, type TestDatabase } from './helpers/database.ts';

// The three ways a code goes out, each against a real peer on this machine: an SMTP
// server, an HTTP SMS gateway, and the outbox table.

let database: TestDatabase;

beforeAll(async () => {
  database = await testDatabase();
});

afterAll(async () => {
  await database?.close();
});

const listen = (server: http.Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

describe('senders', () => {
  it('sends email through SMTP', async () => {
    const received: string[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, _session, callback) {
        let data = '';
        stream.on('data', (chunk) => (data += chunk));
        stream.on('end', () => {
          received.push(data);
          callback();
        });
      },
    });
    const port = await new Promise<number>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve((smtp.server.address() as AddressInfo).port)));
    try {
      const sender = createSender(database.db, { smtpUrl: `smtp://127.0.0.1:${port}`, smtpFrom: 'passport <no-reply@example.cn>', smsSignature: '【河南中小企业】', outbox: false });
      expect([...sender.channels]).toEqual(['email']);
      await sender.send({ channel: 'email', destination: 'zhang@example.cn', subject: 'code', body: 'your code is 123456' });
      expect(received).toHaveLength(1);
      expect(received[0]).toMatch(/To: zhang@example.cn/);
      expect(received[0]).toContain('your code is 123456');
      await expect(sender.send({ channel: 'sms', destination: '13800138000', subject: 's', body: 'b' })).rejects.toThrow(/no way to send sms/);
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });

  it('posts SMS to the webhook as JSON with the bearer token, and fails on a non-2xx answer', async () => {
    const received: Array<{ body: unknown; auth: string | undefined }> = [];
    let answer = 200;
    const gateway = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ body: JSON.parse(body), auth: req.headers.authorization });
        res.writeHead(answer).end();
      });
    });
    const port = await listen(gateway);
    try {
      const sender = createSender(database.db, { smtpFrom: 'x', smsWebhookUrl: `http://127.0.0.1:${port}/sms`, smsWebhookToken: 'gateway-token', smsSignature: '【河南中小企业】', outbox: false });
      await sender.send({ channel: 'sms', destination: '13800138000', subject: '验证码', body: '您的验证码是 123456' });
      expect(received).toEqual([{ body: { to: '13800138000', text: '【河南中小企业】验证码：您的验证码是 123456' }, auth: 'Bearer gateway-token' }]);
      answer = 500;
      await expect(sender.send({ channel: 'sms', destination: '13800138000', subject: 's', body: 'b' })).rejects.toThrow(/answered 500/);
    } finally {
      await new Promise<void>((resolve) => gateway.close(() => resolve()));
    }
  });

  it('begins every SMS text with the SMS_SIGNATURE the operator set', async () => {
    const texts: string[] = [];
    const gateway = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        texts.push((JSON.parse(body) as { text: string }).text);
        res.writeHead(200).end();
      });
    });
    const port = await listen(gateway);
    try {
      const settings = loadConfig({ SMS_WEBHOOK_URL: `http://127.0.0.1:${port}/sms`, SMS_SIGNATURE: '【郑州窗口】' }).messages;
      const sender = createSender(database.db, settings);
      await sender.send({ channel: 'sms', destination: '13800138000', subject: '验证码', body: '123456' });
      await sender.send({ channel: 'sms', destination: '13800138001', subject: '账号通知', body: '您的密码已修改' });
      expect(texts).toEqual(['【郑州窗口】验证码：123456', '【郑州窗口】账号通知：您的密码已修改']);
      expect(loadConfig({}).messages.smsSignature).toBe('【河南中小企业】');
    } finally {
      await new Promise<void>((resolve) => gateway.close(() => resolve()));
    }
  });

  it('keeps messages in the outbox when nothing else is configured', async () => {
    const sender = createSender(database.db, { smtpFrom: 'x', smsSignature: '【河南中小企业】', outbox: true });
    expect([...sender.channels].sort()).toEqual(['email', 'sms']);
    await sender.send({ channel: 'sms', destination: '13800138000', subject: 's', body: 'code 654321' });
    expect(await database.db('outbox').where({ destination: '13800138000' }).first()).toMatchObject({ channel: 'sms', body: 'code 654321' });
  });
});
