// A fake SIP-over-WebSocket edge for the UI tests (RFC 7118, subprotocol "sip"), just enough to drive
// the phone through registration (MD5 digest), calls in and out, hold, DTMF-free call control, transfer
// (REFER + NOTIFY) and hang-up. No media flows: SDP answers are well-formed but point nowhere.
// It is a test double, not the real edge (which lives in edge-worker/src/sip).
import { createHash, randomBytes } from 'node:crypto';

const md5 = (s) => createHash('md5').update(s).digest('hex');
const rand = (n = 8) => randomBytes(n).toString('hex');
const FINGERPRINT = Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

// ---- WebSocket framing (server side: client frames are masked, ours are not) ----

function encodeFrame(text, opcode = 1) {
  const payload = Buffer.from(text, 'utf8');
  const len = payload.length;
  let header;
  if (len < 126) header = Buffer.from([0x80 | opcode, len]);
  else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

function wsAccept(socket, req, onText, onClose) {
  const key = req.headers['sec-websocket-key'];
  const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (!key || !protocols.includes('sip')) {
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return null;
  }
  const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: sip\r\n\r\n`,
  );
  let buf = Buffer.alloc(0);
  let fragments = [];
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i % 4)];
      buf = buf.subarray(off + len);
      if (opcode === 8) {
        socket.end(encodeFrame('', 8));
        return;
      }
      if (opcode === 9) {
        socket.write(encodeFrame(payload.toString('utf8'), 10));
        continue;
      }
      if (opcode === 1 || opcode === 0) {
        fragments.push(payload);
        if (fin) {
          const text = Buffer.concat(fragments).toString('utf8');
          fragments = [];
          onText(text);
        }
      }
    }
  });
  socket.on('close', onClose);
  socket.on('error', () => socket.destroy());
  return { send: (text) => socket.writable && socket.write(encodeFrame(text)), close: () => socket.destroy() };
}

// ---- SIP ----

const COMPACT = { v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length', c: 'content-type', k: 'supported' };

function parseSip(text) {
  const [head, ...rest] = text.split('\r\n\r\n');
  const body = rest.join('\r\n\r\n');
  const lines = head.split('\r\n');
  const start = lines.shift();
  const headers = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    let name = line.slice(0, i).trim().toLowerCase();
    name = COMPACT[name] ?? name;
    headers.push([name, line.slice(i + 1).trim()]);
  }
  const msg = { start, headers, body, raw: text };
  const m = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(start);
  if (m) {
    msg.method = m[1];
    msg.uri = m[2];
  } else {
    const r = /^SIP\/2\.0 (\d{3}) (.*)$/.exec(start);
    msg.status = Number(r?.[1]);
    msg.reason = r?.[2];
  }
  msg.get = (name) => headers.find(([n]) => n === name)?.[1];
  msg.all = (name) => headers.filter(([n]) => n === name).map(([, v]) => v);
  msg.cseq = () => {
    const [n, method] = (msg.get('cseq') ?? '').split(/\s+/);
    return { n: Number(n), method };
  };
  return msg;
}

const tagOf = (h) => /;\s*tag=([^;>\s]+)/i.exec(h ?? '')?.[1];
const uriOf = (h) => /<([^>]+)>/.exec(h ?? '')?.[1] ?? (h ?? '').split(';')[0].trim();
const userOf = (h) => /sip:([^@;>]+)@/.exec(h ?? '')?.[1];

function digestParams(h) {
  const out = {};
  for (const m of (h ?? '').replace(/^Digest\s+/i, '').matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) out[m[1].toLowerCase()] = m[3] ?? m[2];
  return out;
}

/** An SDP offer the browser can accept (ICE-lite, DTLS, PCMU + telephone-event) and answers from it. */
function sdpOffer() {
  return [
    'v=0', `o=- ${Date.now()} 1 IN IP4 127.0.0.1`, 's=-', 't=0 0', 'a=ice-lite', 'a=group:BUNDLE 0',
    'm=audio 40000 UDP/TLS/RTP/SAVPF 0 101', 'c=IN IP4 127.0.0.1', 'a=mid:0', 'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', `a=ice-ufrag:${rand(4)}`, `a=ice-pwd:${rand(12)}`,
    `a=fingerprint:sha-256 ${FINGERPRINT}`, 'a=setup:actpass', 'a=sendrecv', 'a=rtcp-mux',
    'a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host', '',
  ].join('\r\n');
}

function sdpAnswer(offer) {
  const mid = /a=mid:(\S+)/.exec(offer)?.[1] ?? '0';
  const te = /a=rtpmap:(\d+) telephone-event\/8000/.exec(offer)?.[1];
  const dir = /a=sendonly/.test(offer) ? 'recvonly' : /a=inactive/.test(offer) ? 'inactive' : 'sendrecv';
  return [
    'v=0', `o=- ${Date.now()} 1 IN IP4 127.0.0.1`, 's=-', 't=0 0', 'a=ice-lite', `a=group:BUNDLE ${mid}`,
    `m=audio 40000 UDP/TLS/RTP/SAVPF 0${te ? ' ' + te : ''}`, 'c=IN IP4 127.0.0.1', `a=mid:${mid}`,
    'a=rtpmap:0 PCMU/8000', te ? `a=rtpmap:${te} telephone-event/8000` : null, `a=ice-ufrag:${rand(4)}`,
    `a=ice-pwd:${rand(12)}`, `a=fingerprint:sha-256 ${FINGERPRINT}`, 'a=setup:passive', `a=${dir}`, 'a=rtcp-mux',
    'a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host', '',
  ].filter((l) => l !== null).join('\r\n');
}

export class FakeSip {
  constructor({ domain = 'localhost', realm = 'localhost', users = { 1001: 'demo-1001', 1002: 'demo-1002' } } = {}) {
    Object.assign(this, { domain, realm, users });
    this.received = []; // every message from browsers, parsed
    this.bindings = new Map(); // user -> { conn, contact }
    this.dialogs = new Map(); // call-id -> dialog state
    this.conns = new Set();
    this.registers = 0;
  }

  /** Hook for `server.on('upgrade')` on /ws. */
  upgrade(req, socket) {
    const conn = wsAccept(
      socket,
      req,
      (text) => this.onMessage(conn, text),
      () => {
        this.conns.delete(conn);
        for (const [u, b] of this.bindings) if (b.conn === conn) this.bindings.delete(u);
      },
    );
    if (conn) this.conns.add(conn);
  }

  /** Drops every socket (the phone should reconnect). */
  dropAll() {
    for (const c of this.conns) c.close();
    this.conns.clear();
    this.bindings.clear();
  }

  respond(conn, req, status, reason, { headers = [], body = '', toTag } = {}) {
    const lines = [`SIP/2.0 ${status} ${reason}`];
    for (const v of req.all('via')) lines.push(`Via: ${v}`);
    lines.push(`From: ${req.get('from')}`);
    let to = req.get('to');
    if (status > 100 && !tagOf(to)) to += `;tag=${toTag ?? rand(4)}`;
    lines.push(`To: ${to}`, `Call-ID: ${req.get('call-id')}`, `CSeq: ${req.get('cseq')}`);
    lines.push(...headers);
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
    conn.send(lines.join('\r\n'));
  }

  request(conn, method, uri, { from, to, callId, cseq, headers = [], body = '', contentType = 'application/sdp' }) {
    const lines = [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/WS fake-edge.invalid;branch=z9hG4bK${rand(6)}`,
      'Max-Forwards: 70',
      `From: ${from}`,
      `To: ${to}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...headers,
    ];
    if (body) lines.push(`Content-Type: ${contentType}`);
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
    conn.send(lines.join('\r\n'));
  }

  onMessage(conn, text) {
    if (text.trim() === '') return; // keep-alive
    const msg = parseSip(text);
    this.received.push(msg);
    if (msg.status) return this.onResponse(conn, msg);
    switch (msg.method) {
      case 'REGISTER':
        return this.onRegister(conn, msg);
      case 'INVITE':
        return this.onInvite(conn, msg);
      case 'ACK':
        return;
      case 'BYE':
        this.dialogs.delete(msg.get('call-id'));
        return this.respond(conn, msg, 200, 'OK');
      case 'CANCEL': {
        this.respond(conn, msg, 200, 'OK');
        const d = this.dialogs.get(msg.get('call-id'));
        if (d?.invite && !d.answered) {
          clearTimeout(d.timer);
          this.respond(conn, d.invite, 487, 'Request Terminated', { toTag: d.localTag });
        }
        return;
      }
      case 'REFER':
        return this.onRefer(conn, msg);
      case 'OPTIONS':
        return this.respond(conn, msg, 200, 'OK');
      default:
        return this.respond(conn, msg, 405, 'Method Not Allowed');
    }
  }

  onRegister(conn, msg) {
    const auth = msg.get('authorization');
    if (!auth) {
      return this.respond(conn, msg, 401, 'Unauthorized', {
        headers: [`WWW-Authenticate: Digest realm="${this.realm}", nonce="${rand(8)}", algorithm=MD5, qop="auth"`],
      });
    }
    const p = digestParams(auth);
    const password = this.users[p.username];
    const ha1 = password === undefined ? '' : md5(`${p.username}:${this.realm}:${password}`);
    const ha2 = md5(`REGISTER:${p.uri}`);
    const expected = p.qop ? md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
    if (password === undefined || p.response !== expected) return this.respond(conn, msg, 403, 'Forbidden');
    const contact = msg.get('contact');
    const expires = /expires=(\d+)/.exec(contact ?? '')?.[1] ?? msg.get('expires') ?? '600';
    this.registers += 1;
    if (Number(expires) === 0) this.bindings.delete(p.username);
    else this.bindings.set(p.username, { conn, contact: uriOf(contact) });
    return this.respond(conn, msg, 200, 'OK', { headers: [`Contact: ${contact.replace(/;expires=\d+/, '')};expires=${expires}`] });
  }

  onInvite(conn, msg) {
    const callId = msg.get('call-id');
    const existing = this.dialogs.get(callId);
    if (existing && tagOf(msg.get('to'))) {
      // re-INVITE (hold / unhold / ICE restart): accept whatever was offered.
      existing.reinvites = (existing.reinvites ?? 0) + 1;
      return this.respond(conn, msg, 200, 'OK', {
        body: sdpAnswer(msg.body),
        headers: [`Contact: <sip:${userOf(msg.get('to')) ?? 'edge'}@127.0.0.1;transport=ws>`],
      });
    }
    const target = userOf(msg.uri) ?? '';
    const localTag = rand(4);
    const d = { invite: msg, localTag, answered: false, conn, remote: msg.get('from'), remoteContact: uriOf(msg.get('contact')) };
    this.dialogs.set(callId, d);
    this.respond(conn, msg, 100, 'Trying');
    if (target === '486') return this.respond(conn, msg, 486, 'Busy Here', { toTag: localTag });
    this.respond(conn, msg, 180, 'Ringing', { toTag: localTag });
    d.timer = setTimeout(() => {
      d.answered = true;
      this.respond(conn, msg, 200, 'OK', {
        toTag: localTag,
        body: sdpAnswer(msg.body),
        headers: [`Contact: <sip:${target}@127.0.0.1;transport=ws>`],
      });
    }, 400);
  }

  onRefer(conn, msg) {
    this.respond(conn, msg, 202, 'Accepted');
    const callId = msg.get('call-id');
    const d = this.dialogs.get(callId);
    d.referTo = msg.get('refer-to');
    d.cseq = (d.cseq ?? 100) + 1;
    // The transfer "succeeds" at once.
    this.request(conn, 'NOTIFY', uriOf(msg.get('contact')), {
      from: msg.get('to').includes('tag=') ? msg.get('to') : `${msg.get('to')};tag=${d.localTag}`,
      to: msg.get('from'),
      callId,
      cseq: d.cseq,
      headers: ['Event: refer', 'Subscription-State: terminated;reason=noresource', `Contact: <sip:edge@127.0.0.1;transport=ws>`],
      body: 'SIP/2.0 200 OK\r\n',
      contentType: 'message/sipfrag;version=2.0',
    });
  }

  onResponse(conn, msg) {
    const { method } = msg.cseq();
    const callId = msg.get('call-id');
    const d = this.dialogs.get(callId);
    if (method === 'INVITE' && d && d.outgoing) {
      if (msg.status >= 200) {
        // ACK: 2xx to the browser's contact, non-2xx on the same transaction.
        d.remoteTag = tagOf(msg.get('to'));
        d.remoteContact = uriOf(msg.get('contact')) || d.uri;
        if (msg.status < 300) d.answered = true;
        this.request(conn, 'ACK', msg.status < 300 ? d.remoteContact : d.uri, {
          from: msg.get('from'), to: msg.get('to'), callId, cseq: msg.cseq().n,
        });
        if (msg.status >= 300) this.dialogs.delete(callId);
      }
    }
  }

  /** Rings `user` (registered) from `from`; resolves to the call id. */
  invite(user, { from = '1002', name = 'Test Caller' } = {}) {
    const b = this.bindings.get(user);
    if (!b) throw new Error(`${user} is not registered`);
    const callId = rand(10);
    const d = {
      outgoing: true,
      conn: b.conn,
      uri: b.contact,
      localTag: rand(4),
      fromHeader: `"${name}" <sip:${from}@${this.domain}>`,
      toHeader: `<sip:${user}@${this.domain}>`,
      cseq: 1,
    };
    d.fromHeader += `;tag=${d.localTag}`;
    this.dialogs.set(callId, d);
    this.request(b.conn, 'INVITE', b.contact, {
      from: d.fromHeader, to: d.toHeader, callId, cseq: 1,
      headers: [`Contact: <sip:${from}@127.0.0.1;transport=ws>`, 'Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS'],
      body: sdpOffer(),
    });
    return callId;
  }

  /** The far end hangs up an answered call. */
  bye(callId) {
    const d = this.dialogs.get(callId);
    if (!d) return;
    d.cseq += 1;
    this.request(d.conn, 'BYE', d.remoteContact, {
      from: d.fromHeader, to: `${d.toHeader};tag=${d.remoteTag}`, callId, cseq: d.cseq,
    });
    this.dialogs.delete(callId);
  }

  /** Methods or statuses received, in order: ['REGISTER', 401 ...] is not kept; 'REGISTER', '200' etc. */
  seen(what) {
    return this.received.filter((m) => (typeof what === 'number' ? m.status === what : m.method === what));
  }
}
