//! What a file's header claims, checked before any decoder acts on it.
//!
//! symphonia trusts its input in two ways that a hand-made file turns into a crash: it
//! panics on a sample rate of 0 (a 1/0 time base), and it allocates a buffer of whatever size
//! a length field states before reading it (a RIFF LIST entry, a FLAC picture or comment, a
//! Vorbis comment, an ID3v2 frame: up to 4 GB each, from a file of a few hundred bytes). So
//! before symphonia sees a file, this module finds the element symphonia's probe will pick
//! (the same marker search) and checks the fields it would act on: sample rate, channel
//! count, block layout, and the length fields it allocates from, which must fit in the bytes
//! that are there. Problems come back in words, e.g. "sample rate 0 Hz in the header is
//! outside 4000..=384000 Hz".

use super::{MAX_CHANNELS, MAX_RATE, MIN_RATE};
use std::io::{self, Read, Seek, SeekFrom};

/// What a header states: used for messages and a duration estimate, never for sizing buffers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claims {
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub frames: Option<u64>,
}

/// How far symphonia's probe searches for a format marker (its PROBE_SEARCH_LIMIT).
const PROBE_SEARCH: u64 = 1 << 20;
/// Elements walked before giving up (chunks, metadata blocks, pages, frames).
const MAX_ELEMENTS: usize = 4096;
/// Largest metadata element read into memory to check its inner lengths (FLAC's limit).
const MAX_ELEMENT_BYTES: u64 = 16 << 20;
/// The second byte of every MPEG audio sync word symphonia's probe accepts (layers 1-3).
const MPEG_SYNC: [u8; 18] = [0xfe, 0xff, 0xf6, 0xf7, 0xe6, 0xe7, 0xfc, 0xfd, 0xf4, 0xf5, 0xe4, 0xe5, 0xfa, 0xfb, 0xf2, 0xf3, 0xe2, 0xe3];

/// Checks the file `r` (of `len` bytes) the way symphonia will read it. `Err` is the problem
/// in words; I/O failures are reported as problems too (the file is then unreadable anyway).
pub fn check<R: Read + Seek>(r: &mut R, len: u64) -> Result<Claims, String> {
    let mut src = Src { r, len };
    let mut from = 0;
    // Metadata (ID3v2) may come first; symphonia reads it and searches again after it.
    for _ in 0..16 {
        let found = src.find_marker(from).map_err(read_err)?;
        let result = match found {
            Marker::Id3(at) => {
                from = id3v2(&mut src, at)?;
                continue;
            }
            Marker::Riff(at) => wav(&mut src, at),
            Marker::Flac(at) => flac(&mut src, at),
            Marker::Ogg(at) => ogg(&mut src, at),
            // MPEG audio has no length fields symphonia allocates from; rates come from a table.
            Marker::Mpeg | Marker::None => Ok(Claims::default()),
        };
        return result.map_err(|e| match e {
            Problem::Io(e) => read_err(e),
            Problem::Bad(s) => s,
        });
    }
    Err("more than 16 ID3v2 tags before the audio".into())
}

fn read_err(e: io::Error) -> String {
    format!("cannot read the header: {e}")
}

enum Problem {
    Io(io::Error),
    Bad(String),
}

impl From<io::Error> for Problem {
    fn from(e: io::Error) -> Self {
        Problem::Io(e)
    }
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::Bad(s)
    }
}

fn bad<T>(s: String) -> Result<T, Problem> {
    Err(Problem::Bad(s))
}

enum Marker {
    Id3(u64),
    Riff(u64),
    Flac(u64),
    Ogg(u64),
    Mpeg,
    None,
}

struct Src<'a, R> {
    r: &'a mut R,
    len: u64,
}

impl<R: Read + Seek> Src<'_, R> {
    /// Fills `buf` from `pos`; false (nothing read) when the file ends first.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<bool> {
        if pos.checked_add(buf.len() as u64).is_none_or(|end| end > self.len) {
            return Ok(false);
        }
        self.r.seek(SeekFrom::Start(pos))?;
        self.r.read_exact(buf)?;
        Ok(true)
    }

    /// `n` bytes from `pos` (the caller bounds `n`), or None when the file ends first.
    fn bytes_at(&mut self, pos: u64, n: u64) -> io::Result<Option<Vec<u8>>> {
        let mut v = vec![0; n as usize];
        Ok(self.read_at(pos, &mut v)?.then_some(v))
    }

    /// Bytes left from `pos`.
    fn left(&self, pos: u64) -> u64 {
        self.len.saturating_sub(pos)
    }

    /// symphonia's probe: the first position from `from` (within its search limit) where a
    /// registered marker starts and 16 bytes of context exist.
    fn find_marker(&mut self, from: u64) -> io::Result<Marker> {
        // In blocks that overlap by the 16-byte context: a marker almost always sits at 0.
        const BLOCK: u64 = 64 << 10;
        let end = self.len.min(from.saturating_add(PROBE_SEARCH + 16));
        let mut start = from;
        while start < end {
            let n = (end - start).min(BLOCK + 16);
            let Some(buf) = self.bytes_at(start, n)? else { break };
            if let Some(m) = Self::marker_in(&buf, start, from) {
                return Ok(m);
            }
            start += BLOCK;
        }
        Ok(Marker::None)
    }

    /// The first marker in `buf` (read from `start`; the search began at `from`).
    fn marker_in(buf: &[u8], start: u64, from: u64) -> Option<Marker> {
        for i in 0..buf.len().min(64 << 10) {
            let at = start + i as u64;
            // symphonia counts bytes from where it started; the window ends one byte later.
            if i + 16 > buf.len() || at + 2 - from > PROBE_SEARCH {
                return None;
            }
            let w = &buf[i..];
            if w.starts_with(b"ID3") {
                return Some(Marker::Id3(at));
            }
            if w.starts_with(b"RIFF") {
                return Some(Marker::Riff(at));
            }
            if w.starts_with(b"fLaC") {
                return Some(Marker::Flac(at));
            }
            if w.starts_with(b"OggS") {
                return Some(Marker::Ogg(at));
            }
            if w[0] == 0xff && MPEG_SYNC.contains(&w[1]) {
                return Some(Marker::Mpeg);
            }
        }
        None
    }
}

fn u16le(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn u32be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn u24be(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn rate_ok(rate: u32) -> Result<(), String> {
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(format!("sample rate {rate} Hz in the header is outside {MIN_RATE}..={MAX_RATE} Hz"));
    }
    Ok(())
}

fn channels_ok(n: u32) -> Result<(), String> {
    if n == 0 || n > MAX_CHANNELS {
        return Err(format!("{n} channels in the header (allowed: 1..={MAX_CHANNELS})"));
    }
    Ok(())
}

fn printable(tag: &[u8]) -> String {
    tag.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }).collect()
}

/// RIFF/WAVE: walks the chunks up to `data`. symphonia allocates LIST entries by their stated
/// length and derives packet sizes and ADPCM frame counts from `fmt `.
fn wav<R: Read + Seek>(src: &mut Src<R>, at: u64) -> Result<Claims, Problem> {
    let mut h = [0u8; 12];
    if !src.read_at(at, &mut h)? || &h[8..12] != b"WAVE" {
        // Not WAVE: symphonia refuses it before acting on anything.
        return Ok(Claims::default());
    }
    let mut pos = at + 12;
    let mut claims = Claims::default();
    let mut frame_bytes: Option<(u64, u64)> = None;
    for _ in 0..MAX_ELEMENTS {
        let mut ch = [0u8; 8];
        if !src.read_at(pos, &mut ch)? {
            let what = if claims.sample_rate.is_none() { "'fmt '" } else { "'data'" };
            return bad(format!("no {what} chunk before the end of the file ({} bytes)", src.len));
        }
        let (tag, len) = (&ch[..4], u32le(&ch[4..]) as u64);
        let body = pos + 8;
        if tag == b"data" {
            if claims.sample_rate.is_none() {
                return bad("the 'data' chunk comes before any 'fmt ' chunk".into());
            }
            // An unknown length (0xFFFFFFFF, written by streaming encoders) states no duration.
            if len != u32::MAX as u64 {
                claims.frames = frame_bytes.map(|(bytes, frames)| len / bytes * frames);
            }
            return Ok(claims);
        }
        if len > src.left(body) {
            return bad(format!("the '{}' chunk claims {len} bytes but only {} remain in the file", printable(tag), src.left(body)));
        }
        if tag == b"fmt " {
            frame_bytes = Some(wav_fmt(src, body, len, &mut claims)?);
        }
        pos = body + len + (len & 1);
    }
    bad(format!("more than {MAX_ELEMENTS} chunks before the audio data"))
}

/// The `fmt ` chunk; returns (bytes per block, frames per block).
fn wav_fmt<R: Read + Seek>(src: &mut Src<R>, body: u64, len: u64, claims: &mut Claims) -> Result<(u64, u64), Problem> {
    if len < 16 {
        return bad(format!("the 'fmt ' chunk is {len} bytes, shorter than the 16 it must have"));
    }
    let mut f = [0u8; 16];
    src.read_at(body, &mut f)?;
    let (tag, channels, rate) = (u16le(&f[0..]), u16le(&f[2..]) as u32, u32le(&f[4..]));
    let (block_align, bits) = (u16le(&f[12..]) as u64, u16le(&f[14..]) as u64);
    rate_ok(rate)?;
    channels_ok(channels)?;
    if block_align == 0 {
        return bad("block align 0 in the 'fmt ' chunk".into());
    }
    let ch = channels as u64;
    let frames_per_block = match tag {
        // ADPCM: symphonia computes (block_align - header bytes) * 8 / (bits * channels) in u16.
        0x0002 | 0x0011 => {
            let header = if tag == 0x0002 { 7 * ch } else { 4 * ch };
            if bits != 4 {
                return bad(format!("{bits} bits per ADPCM sample in the 'fmt ' chunk (only 4 exists)"));
            }
            if channels > 2 {
                return bad(format!("ADPCM with {channels} channels (only mono and stereo exist)"));
            }
            if block_align <= header {
                return bad(format!("block align {block_align} is too small for ADPCM with {channels} channels"));
            }
            (block_align - header) * 8 / (bits * ch) + if tag == 0x0002 { 2 } else { 1 }
        }
        // Everything else stores whole frames: a frame is at most 8 bytes per channel, and a
        // larger block align would make every packet (1152 blocks) absurdly large.
        _ => {
            if block_align > 8 * ch {
                return bad(format!("block align {block_align} is more than 8 bytes per channel ({channels} channels)"));
            }
            1
        }
    };
    claims.sample_rate = Some(rate);
    claims.channels = Some(channels);
    Ok((block_align, frames_per_block))
}

/// FLAC: STREAMINFO's rate and channels, and every metadata block's length; inside comment
/// and picture blocks, every length symphonia allocates from.
fn flac<R: Read + Seek>(src: &mut Src<R>, at: u64) -> Result<Claims, Problem> {
    let mut pos = at + 4;
    let mut claims = Claims::default();
    for _ in 0..MAX_ELEMENTS {
        let mut h = [0u8; 4];
        if !src.read_at(pos, &mut h)? {
            break;
        }
        let (last, kind, len) = (h[0] & 0x80 != 0, h[0] & 0x7f, u24be(&h[1..]) as u64);
        let body = pos + 4;
        if len > src.left(body) {
            return bad(format!("a FLAC metadata block (type {kind}) claims {len} bytes but only {} remain", src.left(body)));
        }
        match kind {
            0 => {
                if len < 18 {
                    return bad(format!("the FLAC STREAMINFO block is {len} bytes, shorter than 18"));
                }
                let mut s = [0u8; 18];
                src.read_at(body, &mut s)?;
                let rate = (s[10] as u32) << 12 | (s[11] as u32) << 4 | (s[12] as u32) >> 4;
                let channels = ((s[12] >> 1) & 0x7) as u32 + 1;
                let total = ((s[13] & 0x0f) as u64) << 32 | u32be(&s[14..]) as u64;
                rate_ok(rate)?;
                claims.sample_rate = Some(rate);
                claims.channels = Some(channels);
                claims.frames = (total > 0).then_some(total);
            }
            4 | 6 => {
                let b = src.bytes_at(body, len.min(MAX_ELEMENT_BYTES))?.unwrap_or_default();
                if kind == 4 {
                    vorbis_comments(&b, "FLAC comment block")?;
                } else {
                    flac_picture(&b)?;
                }
            }
            _ => {}
        }
        pos = body + len;
        if last {
            break;
        }
    }
    Ok(claims)
}

/// Walks `n` length-prefixed fields in `b` from `at`; each length must fit in what is left.
struct Lengths<'a> {
    b: &'a [u8],
    at: usize,
    what: &'a str,
}

impl Lengths<'_> {
    fn u32(&mut self, le: bool) -> Result<u32, String> {
        let Some(x) = self.b.get(self.at..self.at + 4) else {
            return Err(format!("the {} ends inside a length field", self.what));
        };
        self.at += 4;
        Ok(if le { u32le(x) } else { u32be(x) })
    }
    fn skip(&mut self, n: u64, field: &str) -> Result<(), String> {
        let left = (self.b.len() - self.at) as u64;
        if n > left {
            return Err(format!("a {field} in the {} claims {n} bytes but only {left} remain", self.what));
        }
        self.at += n as usize;
        Ok(())
    }
}

/// A Vorbis comment list (vendor string, count, comments), as in FLAC and Ogg Vorbis.
fn vorbis_comments(b: &[u8], what: &str) -> Result<(), String> {
    let mut l = Lengths { b, at: 0, what };
    let vendor = l.u32(true)?;
    l.skip(vendor as u64, "vendor string")?;
    let n = l.u32(true)?;
    for _ in 0..n {
        let len = l.u32(true)?;
        l.skip(len as u64, "comment")?;
    }
    Ok(())
}

fn flac_picture(b: &[u8]) -> Result<(), String> {
    let mut l = Lengths { b, at: 0, what: "FLAC picture block" };
    l.u32(false)?;
    let mime = l.u32(false)?;
    l.skip(mime as u64, "media type")?;
    let desc = l.u32(false)?;
    l.skip(desc as u64, "description")?;
    l.skip(16, "picture size")?;
    let data = l.u32(false)?;
    l.skip(data as u64, "picture")
}

/// Ogg: every page, read the way symphonia reads them (a page with a bad checksum or version
/// is skipped by searching for the next capture pattern after its own), and every packet that
/// is a Vorbis identification or comment header, which symphonia parses wherever it occurs.
fn ogg<R: Read + Seek>(src: &mut Src<R>, at: u64) -> Result<Claims, Problem> {
    struct Logical {
        serial: u32,
        packet: Vec<u8>,
        /// Whether the packet being assembled may be a header this checks (decided at 7 bytes).
        keep: bool,
        index: u64,
    }
    let mut claims = Claims::default();
    let mut streams: Vec<Logical> = Vec::new();
    let mut pos = at;
    while let Some(p) = find_capture(src, pos)? {
        let mut h = [0u8; 27];
        if !src.read_at(p, &mut h)? {
            break;
        }
        let nseg = h[26] as u64;
        let Some(table) = src.bytes_at(p + 27, nseg)? else { break };
        let body_len: u64 = table.iter().map(|&s| s as u64).sum();
        let Some(body) = src.bytes_at(p + 27 + nseg, body_len)? else { break };
        let mut crc = ogg_crc(0, &h[..22]);
        crc = ogg_crc(crc, &[0; 4]);
        crc = ogg_crc(ogg_crc(ogg_crc(crc, &h[26..]), &table), &body);
        if h[4] != 0 || crc != u32le(&h[22..]) {
            pos = p + 4;
            continue;
        }
        pos = p + 27 + nseg + body_len;
        let serial = u32le(&h[14..]);
        let i = match streams.iter().position(|s| s.serial == serial) {
            Some(i) => i,
            None if streams.len() < 64 => {
                streams.push(Logical { serial, packet: Vec::new(), keep: true, index: 0 });
                streams.len() - 1
            }
            None => continue,
        };
        let first_stream = i == 0;
        let st = &mut streams[i];
        let mut off = 0usize;
        for &seg in &table {
            let piece = &body[off..off + seg as usize];
            off += seg as usize;
            if st.keep {
                st.packet.extend_from_slice(piece);
                if st.packet.len() >= 7 {
                    st.keep = st.packet.starts_with(b"\x01vorbis") || st.packet.starts_with(b"\x03vorbis");
                }
                if st.packet.len() as u64 > MAX_ELEMENT_BYTES {
                    return bad(format!("an Ogg Vorbis header packet is larger than {} MB", MAX_ELEMENT_BYTES >> 20));
                }
            }
            if seg < 255 {
                // The packet is complete.
                if st.keep && st.packet.starts_with(b"\x03vorbis") {
                    vorbis_comments(&st.packet[7..], "Vorbis comment header")?;
                }
                if st.keep && st.packet.starts_with(b"\x01vorbis") && st.packet.len() >= 16 {
                    let (channels, rate) = (st.packet[11] as u32, u32le(&st.packet[12..]));
                    channels_ok(channels)?;
                    rate_ok(rate)?;
                    if first_stream && st.index == 0 {
                        claims.sample_rate = Some(rate);
                        claims.channels = Some(channels);
                    }
                }
                st.packet.clear();
                st.keep = true;
                st.index += 1;
            }
        }
    }
    Ok(claims)
}

/// The next Ogg capture pattern at or after `from`.
fn find_capture<R: Read + Seek>(src: &mut Src<R>, from: u64) -> io::Result<Option<u64>> {
    let mut quad = [0u8; 4];
    if src.read_at(from, &mut quad)? && &quad == b"OggS" {
        return Ok(Some(from));
    }
    const BLOCK: u64 = 64 << 10;
    let mut start = from;
    while start < src.len {
        let n = src.left(start).min(BLOCK + 3);
        let Some(buf) = src.bytes_at(start, n)? else { break };
        if let Some(i) = buf.windows(4).position(|w| w == b"OggS") {
            return Ok(Some(start + i as u64));
        }
        start += BLOCK;
    }
    Ok(None)
}

/// Ogg's CRC-32 (polynomial 0x04c11db7, not reflected, initial value 0), continued from `crc`.
fn ogg_crc(crc: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04c1_1db7 } else { r << 1 };
            }
            *e = r;
        }
        t
    });
    data.iter().fold(crc, |crc, &b| (crc << 8) ^ t[((crc >> 24) as u8 ^ b) as usize])
}

/// ID3v2: the tag must fit in the file and every frame in the tag. Returns where the tag
/// ends (symphonia searches for the audio from there).
fn id3v2<R: Read + Seek>(src: &mut Src<R>, at: u64) -> Result<u64, String> {
    let mut h = [0u8; 10];
    if !src.read_at(at, &mut h).map_err(read_err)? {
        return Ok(src.len);
    }
    let (major, flags) = (h[3], h[5]);
    if !(2..=4).contains(&major) || h[4] == 0xff {
        // symphonia refuses these before reading further.
        return Ok(src.len);
    }
    let size = h[6..10].iter().fold(0u64, |s, &b| (s << 7) | (b & 0x7f) as u64);
    let body = at + 10;
    if size > src.left(body) {
        return Err(format!("the ID3v2 tag claims {size} bytes but only {} remain in the file", src.left(body)));
    }
    if size > MAX_ELEMENT_BYTES {
        return Err(format!("the ID3v2 tag is {size} bytes, more than the {} MB accepted", MAX_ELEMENT_BYTES >> 20));
    }
    let raw = src.bytes_at(body, size).map_err(read_err)?.unwrap_or_default();
    // Before version 4, unsynchronisation applies to the whole tag: 0xff 0x00 stands for 0xff.
    let tag = if flags & 0x80 != 0 && major < 4 { resync(&raw) } else { raw };
    let mut p = 0usize;
    if major >= 3 && flags & 0x40 != 0 {
        // Extended header: symphonia reads its fixed fields, frames follow.
        p = match major {
            3 => tag.get(4..6).map_or(tag.len(), |f| if f[0] & 0x80 != 0 { 14 } else { 10 }),
            _ => tag.get(0..4).map_or(tag.len(), |s| s.iter().fold(0usize, |a, &b| (a << 7) | (b & 0x7f) as usize)),
        };
    }
    let head = if major == 2 { 6 } else { 10 };
    for _ in 0..MAX_ELEMENTS {
        let Some(f) = tag.get(p..p + head) else { break };
        let id = &f[..if major == 2 { 3 } else { 4 }];
        if !id.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            break; // padding
        }
        let len = match major {
            2 => u24be(&f[3..]) as u64,
            3 => u32be(&f[4..]) as u64,
            _ => f[4..8].iter().fold(0u64, |s, &b| (s << 7) | (b & 0x7f) as u64),
        };
        let left = (tag.len() - p - head) as u64;
        if len > left {
            return Err(format!("the ID3v2 frame '{}' claims {len} bytes but only {left} remain in the tag", printable(id)));
        }
        p += head + len as usize;
    }
    // symphonia does not skip a version 4 footer: its search for what follows starts right
    // after the tag body, and so does this one (found by fuzzing: a second tag hid there).
    Ok(body + size)
}

fn resync(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        out.push(b[i]);
        i += if b[i] == 0xff && b.get(i + 1) == Some(&0) { 2 } else { 1 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn check_bytes(b: &[u8]) -> Result<Claims, String> {
        check(&mut Cursor::new(b), b.len() as u64)
    }

    fn wav_bytes(rate: u32, channels: u16, bits: u16, data: &[u8], extra: &[u8]) -> Vec<u8> {
        let ba = channels * bits / 8;
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(36 + extra.len() as u32 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * ba as u32).to_le_bytes());
        v.extend_from_slice(&ba.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(extra);
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn a_plain_wav_states_rate_channels_and_length() {
        let c = check_bytes(&wav_bytes(16_000, 2, 16, &[0; 400], &[])).unwrap();
        assert_eq!(c, Claims { sample_rate: Some(16_000), channels: Some(2), frames: Some(100) });
    }

    #[test]
    fn wav_rates_channels_and_chunk_lengths_are_bounded() {
        let e = check_bytes(&wav_bytes(0, 1, 16, &[0; 100], &[])).unwrap_err();
        assert_eq!(e, "sample rate 0 Hz in the header is outside 4000..=384000 Hz");
        assert!(check_bytes(&wav_bytes(1, 1, 16, &[0; 100], &[])).unwrap_err().contains("sample rate 1 Hz"));
        assert!(check_bytes(&wav_bytes(16_000, 0, 16, &[0; 100], &[])).unwrap_err().contains("0 channels"));
        // A LIST chunk claiming 4 GB in a file of a few bytes.
        let list = [b"LIST".as_slice(), &0xffff_fff0u32.to_le_bytes(), b"INFO"].concat();
        let e = check_bytes(&wav_bytes(16_000, 1, 16, &[0; 100], &list)).unwrap_err();
        assert!(e.contains("'LIST' chunk claims 4294967280 bytes"), "{e}");
    }

    #[test]
    fn vorbis_comment_lengths_must_fit() {
        let mut ok = 5u32.to_le_bytes().to_vec();
        ok.extend_from_slice(b"hello");
        ok.extend_from_slice(&1u32.to_le_bytes());
        ok.extend_from_slice(&3u32.to_le_bytes());
        ok.extend_from_slice(b"a=b");
        assert!(vorbis_comments(&ok, "x").is_ok());
        let mut bad = ok.clone();
        bad[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(vorbis_comments(&bad, "x").unwrap_err().contains("claims 4294967295 bytes"));
    }

    #[test]
    fn ogg_crc_matches_a_real_page() {
        // The first page of the Ogg asset carries its own checksum.
        let b = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/yes_0cb74144.ogg")).unwrap();
        let len = 27 + b[26] as usize + b[27..27 + b[26] as usize].iter().map(|&s| s as usize).sum::<usize>();
        let mut page = b[..len].to_vec();
        page[22..26].fill(0);
        assert_eq!(ogg_crc(0, &page), u32le(&b[22..]));
    }
}
