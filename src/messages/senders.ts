import nodemailer from 'nodemailer';
import type { Db } from '../db/connect.ts';

// How codes and notices reach people: email over SMTP, SMS through an HTTP webhook (a
// JSON POST, so any SMS gateway can sit behind it), or, outside production, the
// development outbox table shown at /dev/outbox.

export type Channel = 'email' | 'sms';
export type Message = { channel: Channel; destination: string; subject: string; body: string };
export type Sender = { send(message: Message): Promise<void>; channels: Set<Channel> };

// smsSignature: the carrier-registered 【…】 every SMS text begins with (carriers refuse
// texts without one); email has its sender address instead.
export type SenderSettings = { smtpUrl?: string; smtpFrom: string; smsWebhookUrl?: string; smsWebhookToken?: string; smsSignature: string; outbox: boolean };

export function outbox(db: Db) {
  return async (m: Message) => {
    await db('outbox').insert({ channel: m.channel, destination: m.destination, subject: m.subject, body: m.body });
  };
}

export function createSender(db: Db, settings: SenderSettings): Sender {
  const toOutbox = settings.outbox ? outbox(db) : undefined;
  const mail = settings.smtpUrl ? nodemailer.createTransport(settings.smtpUrl) : undefined;
  const email = mail
    ? async (m: Message) => {
        await mail.sendMail({ from: settings.smtpFrom, to: m.destination, subject: m.subject, text: m.body });
      }
    : toOutbox;
  const sms = settings.smsWebhookUrl
    ? async (m: Message) => {
        const res = await fetch(settings.smsWebhookUrl!, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(settings.smsWebhookToken && { authorization: `Bearer ${settings.smsWebhookToken}` }) },
          body: JSON.stringify({ to: m.destination, text: `${settings.smsSignature}${m.subject}：${m.body}` }),
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`the SMS gateway answered ${res.status}`);
      }
    : toOutbox;
  const channels = new Set<Channel>([...(email ? ['email' as const] : []), ...(sms ? ['sms' as const] : [])]);
  return {
    channels,
    async send(m) {
      const deliver = m.channel === 'email' ? email : sms;
      if (!deliver) throw new Error(`no way to send ${m.channel} is configured`);
      await deliver(m);
    },
  };
}
