//! C-004 transport: a small hand-written WebSocket (RFC 6455) codec for the Codex app-server
//! control socket (`$CODEX_HOME/app-server-control/app-server-control.sock`), which speaks
//! WebSocket framing over a Unix stream, not JSON lines (observed on codex-cli, "managed app-server
//! daemon").
//!
//! WHY hand-written instead of tungstenite: the daemon runs ONE mio edge-triggered loop with no
//! extra threads. tungstenite wants to own a `Read + Write` stream and signals "not now" through
//! `WouldBlock` errors from inside its own state, which makes partial handshakes, partial frames
//! and back-pressure awkward to drive from readiness events. Here everything is sans-I/O: the
//! caller feeds whatever bytes a non-blocking read returned ([`ClientConn::on_bytes`],
//! [`Decoder::feed`]) and drains an output buffer when the socket is writable. A server that
//! stalls mid-frame just leaves a partial buffer; decoding never loops waiting for bytes. We only
//! need the client side (plus a tiny server side for the test app-server), text frames, ping/pong,
//! close and fragmentation, which is a few hundred lines including SHA-1 and base64 for the
//! `Sec-WebSocket-Accept` check, with no new dependency.
//!
//! Limits: a message (all fragments together) larger than `max_message` (default
//! [`MAX_MESSAGE`], 16 MiB) is rejected as soon as a frame header announces it, before its
//! payload is buffered.
use crate::core::rng::XorShift64;
use crate::sys::random;
use std::fmt;

/// Default largest accepted message (all fragments together).
pub(crate) const MAX_MESSAGE: usize = 16 << 20;
/// Largest HTTP upgrade response/request head we accept.
const MAX_HTTP_HEAD: usize = 16 << 10;
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Opcode::Continuation,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            8 => Opcode::Close,
            9 => Opcode::Ping,
            10 => Opcode::Pong,
            _ => return None,
        })
    }
    fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0,
            Opcode::Text => 1,
            Opcode::Binary => 2,
            Opcode::Close => 8,
            Opcode::Ping => 9,
            Opcode::Pong => 10,
        }
    }
    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Why the WebSocket layer gave up on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// The HTTP upgrade failed (status, missing/wrong accept key, oversized head).
    Handshake(String),
    /// A frame broke RFC 6455 (reserved bits, bad opcode, masking, fragmentation, UTF-8 …).
    Protocol(String),
    /// A message is larger than the configured maximum.
    TooBig { size: u64, max: usize },
    /// The peer sent a close frame (code, reason).
    Closed { code: Option<u16>, reason: String },
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Handshake(s) => write!(f, "websocket handshake failed: {s}"),
            WsError::Protocol(s) => write!(f, "websocket protocol error: {s}"),
            WsError::TooBig { size, max } => {
                write!(
                    f,
                    "websocket message of {size} bytes exceeds the {max}-byte limit"
                )
            }
            WsError::Closed { code, reason } => {
                write!(
                    f,
                    "websocket closed by peer (code {code:?}, reason {reason:?})"
                )
            }
        }
    }
}

impl std::error::Error for WsError {}

/// One complete message or control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close { code: Option<u16>, reason: String },
}

// ---------------------------------------------------------------------------------------------
// SHA-1, base64, keys
// ---------------------------------------------------------------------------------------------

/// SHA-1 (FIPS 180-4). Only used for `Sec-WebSocket-Accept`, never for security.
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
pub(crate) fn accept_key(key: &str) -> String {
    let mut s = key.trim().as_bytes().to_vec();
    s.extend_from_slice(WS_GUID.as_bytes());
    base64_encode(&sha1(&s))
}

/// Masking keys. Masking only defeats proxy cache poisoning, so it needs unpredictability per
/// connection, not cryptographic strength.
#[derive(Debug, Clone)]
pub(crate) struct MaskRng(XorShift64);

impl MaskRng {
    /// Seeded from /dev/urandom, or from the clock and pid if that fails.
    pub fn new() -> Self {
        MaskRng(XorShift64::new(random::seed()))
    }
    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.0.next_u64() >> 16) as u32
    }
    pub(crate) fn mask(&mut self) -> [u8; 4] {
        self.next_u32().to_be_bytes()
    }
}

impl Default for MaskRng {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes.
pub(crate) fn random_key() -> String {
    let mut b = [0u8; 16];
    if random::fill(&mut b).is_err() {
        let mut r = MaskRng::new();
        for c in b.chunks_mut(4) {
            c.copy_from_slice(&r.mask());
        }
    }
    base64_encode(&b)
}

// ---------------------------------------------------------------------------------------------
// HTTP upgrade
// ---------------------------------------------------------------------------------------------

/// The client's upgrade request (`GET / HTTP/1.1`, `Host: localhost`).
pub(crate) fn client_handshake_request(key: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Checks the server's upgrade response in `buf`. `Ok(None)`: not complete yet.
/// `Ok(Some(n))`: valid, and the head is `n` bytes long (frames may follow it in `buf`).
pub fn parse_handshake_response(buf: &[u8], key: &str) -> Result<Option<usize>, WsError> {
    let Some(end) = find_head_end(buf) else {
        if buf.len() > MAX_HTTP_HEAD {
            return Err(WsError::Handshake(format!(
                "no end of HTTP head within {MAX_HTTP_HEAD} bytes"
            )));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| WsError::Handshake("HTTP head is not UTF-8".into()))?;
    let status = head.split("\r\n").next().unwrap_or("");
    let mut parts = status.split(' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !proto.starts_with("HTTP/1.") || code != "101" {
        return Err(WsError::Handshake(format!(
            "expected 101 Switching Protocols, got {:?}",
            status.chars().take(80).collect::<String>()
        )));
    }
    let upgrade = header_value(head, "upgrade").unwrap_or("");
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(WsError::Handshake(format!(
            "Upgrade header is {upgrade:?}, not websocket"
        )));
    }
    let want = accept_key(key);
    match header_value(head, "sec-websocket-accept") {
        Some(got) if got == want => Ok(Some(end)),
        Some(got) => Err(WsError::Handshake(format!(
            "Sec-WebSocket-Accept {got:?} does not match {want:?}"
        ))),
        None => Err(WsError::Handshake("no Sec-WebSocket-Accept header".into())),
    }
}

/// Server side: parses a client's upgrade request. `Ok(None)`: incomplete. `Ok(Some((n, key)))`.
pub fn parse_handshake_request(buf: &[u8]) -> Result<Option<(usize, String)>, WsError> {
    let Some(end) = find_head_end(buf) else {
        if buf.len() > MAX_HTTP_HEAD {
            return Err(WsError::Handshake("oversized request head".into()));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| WsError::Handshake("request head is not UTF-8".into()))?;
    if !head.starts_with("GET ") {
        return Err(WsError::Handshake("request is not a GET".into()));
    }
    let key = header_value(head, "sec-websocket-key")
        .ok_or_else(|| WsError::Handshake("no Sec-WebSocket-Key".into()))?;
    Ok(Some((end, key.to_string())))
}

/// Server side: the 101 response for a client key.
pub fn server_handshake_response(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// Encodes one frame. `mask` is required for client frames and absent for server frames.
pub fn encode_frame(fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | opcode.as_u8());
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(mbit | n as u8);
    } else if n <= 0xFFFF {
        out.push(mbit | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(mbit | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Incremental frame decoder: feed bytes, take complete messages. Never blocks, never loops
/// waiting for input; a partial frame stays buffered.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Frames from the server must be unmasked; frames from a client must be masked.
    expect_masked: bool,
    max_message: usize,
    /// An unfinished fragmented message: (is_text, bytes so far).
    frag: Option<(bool, Vec<u8>)>,
}

impl Decoder {
    /// Decodes server→client frames (unmasked).
    pub fn client() -> Self {
        Self::new(false)
    }
    /// Decodes client→server frames (masked).
    pub fn server() -> Self {
        Self::new(true)
    }
    fn new(expect_masked: bool) -> Self {
        Decoder {
            buf: Vec::new(),
            expect_masked,
            max_message: MAX_MESSAGE,
            frag: None,
        }
    }
    pub fn with_max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// Bytes held that do not yet form a whole message (partial frame or fragments).
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.frag.as_ref().map_or(0, |f| f.1.len())
    }
    /// True when a frame or fragmented message has started but not finished.
    pub(crate) fn is_mid_message(&self) -> bool {
        !self.buf.is_empty() || self.frag.is_some()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<WsMessage>, WsError> {
        loop {
            let Some((fin, op, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            match op {
                Opcode::Ping => return Ok(Some(WsMessage::Ping(payload))),
                Opcode::Pong => return Ok(Some(WsMessage::Pong(payload))),
                Opcode::Close => {
                    let (code, reason) = if payload.len() >= 2 {
                        (
                            Some(u16::from_be_bytes([payload[0], payload[1]])),
                            String::from_utf8_lossy(&payload[2..]).into_owned(),
                        )
                    } else {
                        (None, String::new())
                    };
                    return Ok(Some(WsMessage::Close { code, reason }));
                }
                Opcode::Text | Opcode::Binary => {
                    if self.frag.is_some() {
                        return Err(WsError::Protocol(
                            "new data frame while a fragmented message is unfinished".into(),
                        ));
                    }
                    let is_text = op == Opcode::Text;
                    if fin {
                        return finish(is_text, payload).map(Some);
                    }
                    self.frag = Some((is_text, payload));
                }
                Opcode::Continuation => {
                    let Some((is_text, mut acc)) = self.frag.take() else {
                        return Err(WsError::Protocol(
                            "continuation frame without a started message".into(),
                        ));
                    };
                    acc.extend_from_slice(&payload);
                    if fin {
                        return finish(is_text, acc).map(Some);
                    }
                    self.frag = Some((is_text, acc));
                }
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<(bool, Opcode, Vec<u8>)>, WsError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(WsError::Protocol(format!(
                "reserved bits set (first byte {:#04x}) without a negotiated extension",
                b[0]
            )));
        }
        let op = Opcode::from_u8(b[0] & 0x0F)
            .ok_or_else(|| WsError::Protocol(format!("unknown opcode {:#x}", b[0] & 0x0F)))?;
        let masked = b[1] & 0x80 != 0;
        if masked != self.expect_masked {
            return Err(WsError::Protocol(if masked {
                "server frame is masked".into()
            } else {
                "client frame is not masked".into()
            }));
        }
        let len7 = u64::from(b[1] & 0x7F);
        let (len, mut pos) = match len7 {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[2..10]);
                let n = u64::from_be_bytes(a);
                if n >> 63 != 0 {
                    return Err(WsError::Protocol(
                        "64-bit length has its top bit set".into(),
                    ));
                }
                (n, 10)
            }
            n => (n, 2),
        };
        if op.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame".into()));
            }
            if len > 125 {
                return Err(WsError::Protocol(format!("control frame of {len} bytes")));
            }
        } else {
            let so_far = self.frag.as_ref().map_or(0, |f| f.1.len()) as u64;
            if so_far.saturating_add(len) > self.max_message as u64 {
                return Err(WsError::TooBig {
                    size: so_far.saturating_add(len),
                    max: self.max_message,
                });
            }
        }
        let mask = if masked {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            let m = [b[pos], b[pos + 1], b[pos + 2], b[pos + 3]];
            pos += 4;
            Some(m)
        } else {
            None
        };
        let len = len as usize; // bounded by max_message or 125 above
        if b.len() < pos + len {
            return Ok(None);
        }
        let mut payload: Vec<u8> = self.buf[pos..pos + len].to_vec();
        if let Some(m) = mask {
            for (i, x) in payload.iter_mut().enumerate() {
                *x ^= m[i % 4];
            }
        }
        self.buf.drain(..pos + len);
        Ok(Some((fin, op, payload)))
    }
}

fn finish(is_text: bool, data: Vec<u8>) -> Result<WsMessage, WsError> {
    if is_text {
        String::from_utf8(data)
            .map(WsMessage::Text)
            .map_err(|_| WsError::Protocol("text message is not valid UTF-8".into()))
    } else {
        Ok(WsMessage::Binary(data))
    }
}

// ---------------------------------------------------------------------------------------------
// Client connection (sans I/O)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Handshaking { key: String, head: Vec<u8> },
    Open,
    Closed,
}

/// The client side of one WebSocket connection, without I/O: bytes in, messages out, and an
/// output buffer the caller writes when the socket is writable. Pings are answered with pongs
/// and a peer close is echoed automatically.
#[derive(Debug, Clone)]
pub struct ClientConn {
    phase: Phase,
    decoder: Decoder,
    out: Vec<u8>,
    rng: MaskRng,
}

impl ClientConn {
    /// A new connection with the upgrade request already queued in the output buffer.
    pub fn new(max_message: usize) -> Self {
        let key = random_key();
        ClientConn {
            out: client_handshake_request(&key),
            phase: Phase::Handshaking {
                key,
                head: Vec::new(),
            },
            decoder: Decoder::client().with_max_message(max_message),
            rng: MaskRng::new(),
        }
    }
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshaking { .. })
    }
    /// True while a frame or fragmented message is only partly received.
    pub(crate) fn is_mid_message(&self) -> bool {
        match &self.phase {
            Phase::Handshaking { head, .. } => !head.is_empty(),
            _ => self.decoder.is_mid_message(),
        }
    }
    /// Bytes waiting to be written.
    pub fn pending_out(&self) -> &[u8] {
        &self.out
    }
    /// Marks `n` output bytes as written.
    pub fn consume_out(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
    }
    /// Queues a text message (one masked frame).
    pub(crate) fn send_text(&mut self, text: &str) {
        let m = self.rng.mask();
        self.out
            .extend(encode_frame(true, Opcode::Text, text.as_bytes(), Some(m)));
    }
    /// Queues a ping (a liveness probe: any answer, the pong included, shows the peer is
    /// alive). Ignored before the upgrade completes and after a close.
    pub(crate) fn send_ping(&mut self, payload: &[u8]) {
        if self.phase != Phase::Open {
            return;
        }
        let m = self.rng.mask();
        let payload = &payload[..payload.len().min(125)];
        self.out
            .extend(encode_frame(true, Opcode::Ping, payload, Some(m)));
    }
    /// Queues a close frame with a status code and reason.
    pub(crate) fn send_close(&mut self, code: u16, reason: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        let mut p = code.to_be_bytes().to_vec();
        p.extend(reason.as_bytes().iter().take(123));
        let m = self.rng.mask();
        self.out
            .extend(encode_frame(true, Opcode::Close, &p, Some(m)));
        self.phase = Phase::Closed;
    }

    /// Feeds bytes read from the socket; returns the complete text/binary messages. Errors are
    /// fatal for the connection (a close frame with the reason is queued where RFC 6455 says so).
    pub fn on_bytes(&mut self, data: &[u8]) -> Result<Vec<WsMessage>, WsError> {
        let mut data = data;
        let mut spill = Vec::new();
        if let Phase::Handshaking { key, head } = &mut self.phase {
            head.extend_from_slice(data);
            match parse_handshake_response(head, key)? {
                None => return Ok(Vec::new()),
                Some(n) => {
                    spill = head.split_off(n);
                    self.phase = Phase::Open;
                    data = &spill;
                }
            }
        }
        if self.phase == Phase::Closed {
            return Ok(Vec::new());
        }
        self.decoder.feed(data);
        drop(spill);
        let mut msgs = Vec::new();
        loop {
            match self.decoder.next_message() {
                Ok(None) => return Ok(msgs),
                Ok(Some(WsMessage::Ping(p))) => {
                    let m = self.rng.mask();
                    self.out
                        .extend(encode_frame(true, Opcode::Pong, &p, Some(m)));
                }
                Ok(Some(WsMessage::Pong(_))) => {}
                Ok(Some(WsMessage::Close { code, reason })) => {
                    self.send_close(code.unwrap_or(1000), "");
                    return Err(WsError::Closed { code, reason });
                }
                Ok(Some(m)) => msgs.push(m),
                Err(e) => {
                    let code = if matches!(e, WsError::TooBig { .. }) {
                        1009
                    } else {
                        1002
                    };
                    self.send_close(code, &e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha1_and_base64_known_vectors() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = vec![b'a'; 1000];
        assert_eq!(
            hex(&sha1(&long)),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        // RFC 6455 §1.3 example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(random_key().len(), 24);
    }

    fn open_client() -> ClientConn {
        let mut c = ClientConn::new(1024);
        let req = String::from_utf8(c.pending_out().to_vec()).unwrap();
        let (_, key) = parse_handshake_request(req.as_bytes()).unwrap().unwrap();
        c.consume_out(req.len());
        let resp = server_handshake_response(&key);
        assert!(c.on_bytes(&resp).unwrap().is_empty());
        assert!(c.is_open());
        c
    }

    #[test]
    fn handshake_rejects_wrong_accept_and_status() {
        let mut c = ClientConn::new(1024);
        let bad = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: xxx\r\n\r\n";
        assert!(matches!(c.on_bytes(bad), Err(WsError::Handshake(_))));
        let mut c = ClientConn::new(1024);
        assert!(matches!(
            c.on_bytes(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err(WsError::Handshake(_))
        ));
    }

    #[test]
    fn byte_by_byte_feeding_with_frames_after_head() {
        let mut c = ClientConn::new(1 << 20);
        let req = c.pending_out().to_vec();
        let (_, key) = parse_handshake_request(&req).unwrap().unwrap();
        let mut wire = server_handshake_response(&key);
        wire.extend(encode_frame(true, Opcode::Text, b"hello", None));
        let big = "x".repeat(70_000);
        wire.extend(encode_frame(true, Opcode::Text, big.as_bytes(), None));
        wire.extend(encode_frame(true, Opcode::Text, &[b'y'; 300], None));
        let mut got = Vec::new();
        for b in &wire {
            got.extend(c.on_bytes(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], WsMessage::Text("hello".into()));
        assert_eq!(got[1], WsMessage::Text(big));
        assert_eq!(got[2], WsMessage::Text("y".repeat(300)));
    }

    #[test]
    fn client_pings_are_masked_and_only_sent_while_open() {
        let mut c = ClientConn::new(1 << 20);
        let before = c.pending_out().len();
        c.send_ping(b"early");
        assert_eq!(c.pending_out().len(), before, "no ping before the upgrade");
        let mut c = open_client();
        c.send_ping(&[7u8; 200]);
        // A server decoder refuses unmasked client frames, so this also checks the mask.
        let mut srv = Decoder::server();
        srv.feed(c.pending_out());
        assert_eq!(
            srv.next_message().unwrap(),
            Some(WsMessage::Ping(vec![7u8; 125]))
        );
        c.send_close(1000, "");
        let n = c.pending_out().len();
        c.send_ping(b"late");
        assert_eq!(c.pending_out().len(), n, "no ping after a close");
    }

    #[test]
    fn fragmentation_ping_and_close() {
        let mut c = open_client();
        let mut wire = encode_frame(false, Opcode::Text, b"{\"a\":", None);
        wire.extend(encode_frame(true, Opcode::Ping, b"p1", None)); // control between fragments
        wire.extend(encode_frame(true, Opcode::Continuation, b"1}", None));
        let msgs = c.on_bytes(&wire).unwrap();
        assert_eq!(msgs, vec![WsMessage::Text("{\"a\":1}".into())]);
        // The pong went out, masked, with the ping payload.
        let mut srv = Decoder::server();
        srv.feed(c.pending_out());
        assert_eq!(
            srv.next_message().unwrap(),
            Some(WsMessage::Pong(b"p1".to_vec()))
        );
        let n = c.pending_out().len();
        c.consume_out(n);
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend(b"bye");
        let err = c
            .on_bytes(&encode_frame(true, Opcode::Close, &close, None))
            .unwrap_err();
        assert_eq!(
            err,
            WsError::Closed {
                code: Some(1000),
                reason: "bye".into()
            }
        );
        assert!(!c.pending_out().is_empty(), "close is echoed");
    }

    #[test]
    fn oversized_and_malformed_frames_are_rejected() {
        let mut c = open_client();
        // Header announcing 2000 bytes > 1024 max: rejected before the payload arrives.
        let hdr = &encode_frame(true, Opcode::Text, &[b'a'; 2000], None)[..4];
        assert!(matches!(
            c.on_bytes(hdr),
            Err(WsError::TooBig { size: 2000, .. })
        ));

        let mut c = open_client();
        let mut w = encode_frame(false, Opcode::Text, &[b'a'; 600], None);
        w.extend(encode_frame(true, Opcode::Continuation, &[b'a'; 600], None));
        assert!(matches!(
            c.on_bytes(&w),
            Err(WsError::TooBig { size: 1200, .. })
        ));

        for bad in [
            vec![0x81 | 0x40, 0x00],            // RSV1
            vec![0x83, 0x00],                   // opcode 3
            vec![0x81, 0x81, 1, 2, 3, 4, b'a'], // masked server frame
            vec![0x09, 0x00],                   // fragmented ping
            vec![0x80, 0x01, b'a'],             // continuation without start
            vec![0x81, 0x02, 0xff, 0xfe],       // invalid UTF-8
            vec![0x89, 126, 0, 200],            // control frame > 125
        ] {
            let mut c = open_client();
            assert!(
                matches!(c.on_bytes(&bad), Err(WsError::Protocol(_))),
                "{bad:?} should be a protocol error"
            );
        }
    }

    #[test]
    fn stalled_partial_frame_just_waits() {
        let mut c = open_client();
        let f = encode_frame(true, Opcode::Text, b"0123456789", None);
        assert!(c.on_bytes(&f[..5]).unwrap().is_empty());
        assert!(c.is_mid_message());
        assert!(c.on_bytes(&[]).unwrap().is_empty());
        assert_eq!(
            c.on_bytes(&f[5..]).unwrap(),
            vec![WsMessage::Text("0123456789".into())]
        );
        assert!(!c.is_mid_message());
    }

    #[test]
    fn client_frames_are_masked_and_round_trip() {
        let mut c = open_client();
        c.send_text(&"z".repeat(300));
        let mut d = Decoder::server();
        let out = c.pending_out().to_vec();
        assert_eq!(out[1] & 0x80, 0x80);
        d.feed(&out);
        assert_eq!(
            d.next_message().unwrap(),
            Some(WsMessage::Text("z".repeat(300)))
        );
    }
}
