//! Mutations the way real files go wrong: bit flips, odd values in length and header fields,
//! truncation, lost or repeated ranges, two files spliced; and, where it is cheap to find
//! them, the fields of each format that decoders act on (WAV `fmt `/chunk lengths, FLAC
//! STREAMINFO and block lengths, Ogg page and Vorbis header fields with the page checksum
//! recomputed so the damage gets past it, MP3 frame headers and ID3v2 tags, the safetensors
//! header length and the numbers in its JSON).

/// xorshift64*: small, fast, and the same sequence on every platform and version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Wav,
    Flac,
    Ogg,
    Mp3,
    Safetensors,
    Other,
}

impl Kind {
    pub fn of(b: &[u8]) -> Kind {
        if b.starts_with(b"RIFF") {
            Kind::Wav
        } else if b.starts_with(b"fLaC") {
            Kind::Flac
        } else if b.starts_with(b"OggS") {
            Kind::Ogg
        } else if b.starts_with(b"ID3") || (b.len() > 1 && b[0] == 0xff && b[1] & 0xe0 == 0xe0) {
            Kind::Mp3
        } else if b.len() > 9 && b[8] == b'{' {
            Kind::Safetensors
        } else {
            Kind::Other
        }
    }
    /// The file extension a user's file of this kind has (symphonia takes it as a hint).
    pub fn ext(self) -> &'static str {
        match self {
            Kind::Wav => "wav",
            Kind::Flac => "flac",
            Kind::Ogg => "ogg",
            Kind::Mp3 => "mp3",
            Kind::Safetensors => "safetensors",
            Kind::Other => "bin",
        }
    }
}

/// Largest input produced (larger ones are cut): keeps executions fast.
pub const MAX_INPUT: usize = 512 << 10;

const INTERESTING_32: [u32; 16] = [0, 1, 2, 3, 7, 8, 16, 255, 256, 4000, 16_000, 65_535, 65_536, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

fn interesting(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => rng.next() as u32,
        1 => {
            let bits = rng.below(24);
            rng.below(1 << bits) as u32
        }
        _ => *rng.pick(&INTERESTING_32),
    }
}

/// Applies 1..=8 stacked mutations (fewer more often) to `input`; `other` is a second seed
/// for splicing.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let kind = Kind::of(input);
    let n = 1 + (rng.next().trailing_zeros() as usize).min(7);
    for _ in 0..n {
        match rng.below(12) {
            0..=3 => format_field(rng, &mut b, kind),
            4 => flip_bits(rng, &mut b),
            5 => set_bytes(rng, &mut b),
            6 => set_word(rng, &mut b),
            7 => truncate(rng, &mut b),
            8 => delete_range(rng, &mut b),
            9 => repeat_range(rng, &mut b),
            10 => insert_random(rng, &mut b),
            _ => splice(rng, &mut b, other),
        }
    }
    if kind == Kind::Ogg && rng.chance(0.8) {
        fix_ogg_crcs(&mut b);
    }
    b.truncate(MAX_INPUT);
    b
}

fn flip_bits(rng: &mut Rng, b: &mut [u8]) {
    if b.is_empty() {
        return;
    }
    for _ in 0..1 + rng.below(8) {
        let i = rng.below(b.len());
        b[i] ^= 1 << rng.below(8);
    }
}

fn set_bytes(rng: &mut Rng, b: &mut [u8]) {
    if b.is_empty() {
        return;
    }
    let at = rng.below(b.len());
    let r = rng.next() as u8;
    let v = *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xff, r]);
    let n = (1 + rng.below(4)).min(b.len() - at);
    b[at..at + n].fill(v);
}

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    if at + bytes.len() <= b.len() {
        b[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

fn set_word(rng: &mut Rng, b: &mut [u8]) {
    if b.len() < 4 {
        return;
    }
    let at = rng.below(b.len() - 3);
    let v = interesting(rng);
    match rng.below(4) {
        0 => put(b, at, &v.to_le_bytes()),
        1 => put(b, at, &v.to_be_bytes()),
        2 => put(b, at, &(v as u16).to_le_bytes()),
        _ => put(b, at, &(v as u16).to_be_bytes()),
    }
}

fn truncate(rng: &mut Rng, b: &mut Vec<u8>) {
    let keep = if rng.chance(0.5) { rng.below(b.len().clamp(1, 256)) } else { rng.below(b.len().max(1)) };
    b.truncate(keep);
}

fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.below(len.max(1));
    let n = 1 + rng.below((len - start).clamp(1, 4096));
    (start, (start + n).min(len))
}

fn delete_range(rng: &mut Rng, b: &mut Vec<u8>) {
    if !b.is_empty() {
        let (s, e) = range(rng, b.len());
        b.drain(s..e);
    }
}

fn repeat_range(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.is_empty() {
        return;
    }
    let (s, e) = range(rng, b.len());
    let piece = b[s..e].to_vec();
    let at = rng.below(b.len() + 1);
    b.splice(at..at, piece);
}

fn insert_random(rng: &mut Rng, b: &mut Vec<u8>) {
    let at = rng.below(b.len() + 1);
    let piece: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next() as u8).collect();
    b.splice(at..at, piece);
}

fn splice(rng: &mut Rng, b: &mut Vec<u8>, other: &[u8]) {
    if other.is_empty() {
        return;
    }
    let cut = rng.below(b.len() + 1);
    let from = rng.below(other.len());
    b.truncate(cut);
    b.extend_from_slice(&other[from..]);
}

fn format_field(rng: &mut Rng, b: &mut Vec<u8>, kind: Kind) {
    match kind {
        Kind::Wav => wav_field(rng, b),
        Kind::Flac => flac_field(rng, b),
        Kind::Ogg => ogg_field(rng, b),
        Kind::Mp3 => mp3_field(rng, b),
        Kind::Safetensors => safetensors_field(rng, b),
        Kind::Other => set_word(rng, b),
    }
}

/// Offsets of RIFF chunks after the 12-byte header: (tag offset, body offset, length).
fn riff_chunks(b: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    let mut pos = 12;
    while pos + 8 <= b.len() && v.len() < 64 {
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        v.push((pos, pos + 8, len));
        pos = pos.saturating_add(8).saturating_add(len).saturating_add(len & 1);
    }
    v
}

fn wav_field(rng: &mut Rng, b: &mut Vec<u8>) {
    let chunks = riff_chunks(b);
    let fmt = chunks.iter().find(|c| &b[c.0..c.0 + 4] == b"fmt ").map(|c| c.1);
    match rng.below(8) {
        0..=3 => {
            let Some(f) = fmt else { return set_word(rng, b) };
            let v = interesting(rng);
            match rng.below(7) {
                0 => put(b, f, &(*rng.pick(&[1u16, 2, 3, 6, 7, 0x11, 0xfffe, v as u16])).to_le_bytes()),
                1 => put(b, f + 2, &(*rng.pick(&[0u16, 1, 2, 3, 6, 8, 26, 27, 32, 33, 0xffff, v as u16])).to_le_bytes()),
                2 => put(b, f + 4, &(*rng.pick(&[0u32, 1, 3999, 4000, 8000, 11_025, 44_100, 384_000, 384_001, 0xffff_ffff, v])).to_le_bytes()),
                3 => put(b, f + 8, &v.to_le_bytes()),
                4 => put(b, f + 12, &(*rng.pick(&[0u16, 1, 2, 3, 4, 6, 8, 36, 256, 2048, 0xffff, v as u16])).to_le_bytes()),
                5 => put(b, f + 14, &(*rng.pick(&[0u16, 1, 4, 8, 12, 16, 20, 24, 32, 64, 0xffff, v as u16])).to_le_bytes()),
                _ => put(b, f - 4, &(*rng.pick(&[14u32, 16, 18, 20, 40, v])).to_le_bytes()),
            }
        }
        4 => {
            // A chunk's length, or the RIFF length.
            let v = interesting(rng);
            match chunks.get(rng.below(chunks.len() + 1)) {
                Some(c) => put(b, c.0 + 4, &v.to_le_bytes()),
                None => put(b, 4, &v.to_le_bytes()),
            }
        }
        5 | 6 => {
            // A new chunk before `data`: metadata symphonia parses, or an unknown one.
            let at = chunks.iter().find(|c| &b[c.0..c.0 + 4] == b"data").map_or(12.min(b.len()), |c| c.0);
            let tag: [u8; 4] = *rng.pick(&[*b"LIST", *b"fact", *b"fmt ", *b"junk", *b"data"]);
            let mut chunk = tag.to_vec();
            let body: Vec<u8> = if &tag == b"LIST" {
                let mut l = b"INFO".to_vec();
                for _ in 0..1 + rng.below(3) {
                    l.extend_from_slice(*rng.pick(&[b"INAM", b"IART", b"ICMT", b"ISFT"]));
                    let n = 1 + rng.below(12);
                    let claimed = if rng.chance(0.3) { interesting(rng) } else { n as u32 };
                    l.extend_from_slice(&claimed.to_le_bytes());
                    l.extend((0..n).map(|i| b'a' + (i % 26) as u8));
                    if n % 2 == 1 {
                        l.push(0);
                    }
                }
                l
            } else {
                (0..rng.below(48)).map(|_| rng.next() as u8).collect()
            };
            let len = if rng.chance(0.3) { interesting(rng) } else { body.len() as u32 };
            chunk.extend_from_slice(&len.to_le_bytes());
            chunk.extend_from_slice(&body);
            b.splice(at..at, chunk);
        }
        _ => truncate(rng, b),
    }
}

fn flac_field(rng: &mut Rng, b: &mut Vec<u8>) {
    // Metadata blocks: (header offset, length).
    let mut blocks = Vec::new();
    let mut pos = 4;
    while pos + 4 <= b.len() && blocks.len() < 32 {
        let len = u32::from_be_bytes([0, b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        blocks.push((pos, len));
        if b[pos] & 0x80 != 0 {
            break;
        }
        pos += 4 + len;
    }
    match rng.below(6) {
        0 | 1 => {
            // STREAMINFO: block sizes, frame sizes, rate/channels/bits, total samples.
            let si = 8;
            let v = interesting(rng);
            match rng.below(5) {
                0 => put(b, si + rng.below(2) * 2, &(v as u16).to_be_bytes()),
                1 => put(b, si + 4 + rng.below(2) * 3, &v.to_be_bytes()[1..]),
                2 => {
                    // 20 bits of rate, 3 of channels, 5 of bits per sample.
                    let rate = *rng.pick(&[0u32, 1, 3999, 8000, 16_000, 44_100, 384_001, 0xfffff, v & 0xfffff]);
                    let (ch, bps) = (rng.below(8) as u32, rng.below(32) as u32);
                    let packed = rate << 12 | ch << 9 | bps << 4;
                    put(b, si + 10, &packed.to_be_bytes()[..3]);
                }
                3 => put(b, si + 13, &v.to_be_bytes()),
                _ => put(b, si + 4 + rng.below(30), &[rng.next() as u8]),
            }
        }
        2 => {
            // A block's length, type or last flag.
            if let Some(&(at, _)) = blocks.get(rng.below(blocks.len().max(1))) {
                match rng.below(3) {
                    0 => put(b, at + 1, &interesting(rng).to_be_bytes()[1..]),
                    1 => b[at] = (b[at] & 0x80) | rng.below(128) as u8,
                    _ => b[at] ^= 0x80,
                }
            }
        }
        3 | 4 => {
            // A comment or picture block with lengths that may lie.
            let at = blocks.get(1).map_or(b.len().min(42), |&(p, _)| p);
            let mut body = Vec::new();
            let lie = |rng: &mut Rng, n: usize| if rng.chance(0.3) { interesting(rng) } else { n as u32 };
            let kind = if rng.chance(0.5) { 4u8 } else { 6u8 };
            if kind == 4 {
                let vendor = b"fuzz";
                body.extend_from_slice(&lie(rng, vendor.len()).to_le_bytes());
                body.extend_from_slice(vendor);
                let n = rng.below(4);
                body.extend_from_slice(&lie(rng, n).to_le_bytes());
                for _ in 0..n {
                    let c = b"TITLE=x";
                    body.extend_from_slice(&lie(rng, c.len()).to_le_bytes());
                    body.extend_from_slice(c);
                }
            } else {
                body.extend_from_slice(&3u32.to_be_bytes());
                for s in [&b"image/png"[..], &b"cover"[..]] {
                    body.extend_from_slice(&lie(rng, s.len()).to_be_bytes());
                    body.extend_from_slice(s);
                }
                body.extend_from_slice(&[0; 16]);
                body.extend_from_slice(&lie(rng, 8).to_be_bytes());
                body.extend_from_slice(&[0x89, b'P', b'N', b'G', 0, 0, 0, 0]);
            }
            let len = lie(rng, body.len()) & 0xff_ffff;
            let mut block = vec![kind];
            block.extend_from_slice(&len.to_be_bytes()[1..]);
            block.extend_from_slice(&body);
            if at <= b.len() {
                b.splice(at..at, block);
            }
        }
        _ => {
            // Damage inside the audio frames (past the metadata).
            if pos + 4 < b.len() {
                let i = pos + 4 + rng.below(b.len() - pos - 4);
                b[i] ^= 1 << rng.below(8);
            }
        }
    }
}

/// Ogg pages: (offset, header length, body length).
fn ogg_pages(b: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    let mut pos = 0;
    while pos + 27 <= b.len() && &b[pos..pos + 4] == b"OggS" && v.len() < 4096 {
        let nseg = b[pos + 26] as usize;
        if pos + 27 + nseg > b.len() {
            break;
        }
        let body: usize = b[pos + 27..pos + 27 + nseg].iter().map(|&s| s as usize).sum();
        if pos + 27 + nseg + body > b.len() {
            break;
        }
        v.push((pos, 27 + nseg, body));
        pos += 27 + nseg + body;
    }
    v
}

fn ogg_field(rng: &mut Rng, b: &mut Vec<u8>) {
    let pages = ogg_pages(b);
    if pages.is_empty() {
        return set_word(rng, b);
    }
    let (at, head, body) = pages[rng.below(pages.len().min(4))];
    match rng.below(6) {
        0 => {
            // Page header: flags, granule position, serial, sequence, segment count.
            match rng.below(5) {
                0 => b[at + 5] = rng.below(8) as u8,
                1 => put(b, at + 6, &(rng.next() >> rng.below(64)).to_le_bytes()),
                2 => put(b, at + 14, &interesting(rng).to_le_bytes()),
                3 => put(b, at + 18, &interesting(rng).to_le_bytes()),
                _ => b[at + 26] = rng.next() as u8,
            }
        }
        1 => {
            // A segment length.
            let nseg = head - 27;
            if nseg > 0 {
                let (i, r) = (at + 27 + rng.below(nseg), rng.next() as u8);
                b[i] = *rng.pick(&[0u8, 1, 254, 255, r]);
            }
        }
        2 | 3 => {
            // Vorbis headers: identification (rate, channels, block sizes) or comments.
            let p = at + head;
            if body >= 30 && b.get(p + 1..p + 7) == Some(b"vorbis") {
                if b[p] == 1 {
                    match rng.below(4) {
                        0 => b[p + 11] = *rng.pick(&[0u8, 1, 2, 8, 33, 255]),
                        1 => put(b, p + 12, &(*rng.pick(&[0u32, 1, 3999, 8000, 48_000, 384_001, 0xffff_ffff])).to_le_bytes()),
                        2 => b[p + 28] = rng.next() as u8,
                        _ => put(b, p + 7, &interesting(rng).to_le_bytes()),
                    }
                } else if b[p] == 3 {
                    // Vendor length, comment count or a comment length.
                    let off = *rng.pick(&[7usize, 11 + u32::from_le_bytes([b[p + 7], b[p + 8], b[p + 9], b[p + 10]]).min(1 << 16) as usize]);
                    put(b, p + off, &interesting(rng).to_le_bytes());
                } else {
                    let i = p + 7 + rng.below(body - 7);
                    b[i] ^= 1 << rng.below(8);
                }
            } else if body > 0 {
                let i = at + head + rng.below(body);
                b[i] ^= 1 << rng.below(8);
            }
        }
        4 => {
            // Drop or repeat a whole page.
            let end = (at + head + body).min(b.len());
            let page = b[at..end].to_vec();
            if rng.chance(0.5) {
                b.drain(at..end);
            } else {
                b.splice(end..end, page);
            }
        }
        _ => {
            if body > 0 {
                let i = at + head + rng.below(body);
                b[i] = rng.next() as u8;
            }
        }
    }
}

fn mp3_field(rng: &mut Rng, b: &mut Vec<u8>) {
    let start = if b.starts_with(b"ID3") && b.len() >= 10 { 10 + b[6..10].iter().fold(0usize, |s, &x| (s << 7) | (x & 0x7f) as usize) } else { 0 };
    match rng.below(4) {
        0 | 1 => {
            // A frame header's bits: version, layer, bitrate, rate, padding, mode.
            let frames: Vec<usize> = (start..b.len().saturating_sub(1)).filter(|&i| b[i] == 0xff && b[i + 1] & 0xe0 == 0xe0).take(64).collect();
            if let Some(&i) = frames.get(rng.below(frames.len().max(1))) {
                let j = i + 1 + rng.below(3);
                if j < b.len() {
                    b[j] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            // Prepend an ID3v2 tag whose sizes may lie.
            let major = *rng.pick(&[2u8, 3, 4]);
            let r = rng.next() as u8;
            let flags = *rng.pick(&[0u8, 0x80, 0x40, 0x10, r]);
            let mut frames = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let text = b"\x00fuzzed title";
                let lie = if rng.chance(0.4) { interesting(rng) } else { text.len() as u32 };
                match major {
                    2 => {
                        frames.extend_from_slice(b"TT2");
                        frames.extend_from_slice(&lie.to_be_bytes()[1..]);
                    }
                    3 => {
                        frames.extend_from_slice(*rng.pick(&[b"TIT2", b"APIC", b"COMM", b"TXXX"]));
                        frames.extend_from_slice(&lie.to_be_bytes());
                        frames.extend_from_slice(&[0, 0]);
                    }
                    _ => {
                        frames.extend_from_slice(*rng.pick(&[b"TIT2", b"APIC", b"COMM", b"TXXX"]));
                        frames.extend_from_slice(&syncsafe(lie).to_be_bytes());
                        frames.extend_from_slice(&[0, 0]);
                    }
                }
                frames.extend_from_slice(text);
            }
            let size = if rng.chance(0.3) { interesting(rng) & 0x0fff_ffff } else { frames.len() as u32 };
            let mut tag = vec![b'I', b'D', b'3', major, 0, flags];
            tag.extend_from_slice(&syncsafe(size).to_be_bytes());
            tag.extend_from_slice(&frames);
            b.splice(0..0, tag);
        }
        _ => {
            if b.len() > start + 4 {
                let i = start + 4 + rng.below(b.len() - start - 4);
                b[i] = rng.next() as u8;
            }
        }
    }
}

fn syncsafe(v: u32) -> u32 {
    let v = v & 0x0fff_ffff;
    (v & 0x7f) | (v & 0x3f80) << 1 | (v & 0x1f_c000) << 2 | (v & 0x0fe0_0000) << 3
}

fn safetensors_field(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.len() < 8 {
        return;
    }
    let hlen = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])) as usize;
    let hend = (8 + hlen).min(b.len());
    match rng.below(5) {
        0 => {
            // The header length.
            let r = rng.next() % 4096;
            let v: u64 = *rng.pick(&[0, 1, 7, (hlen as u64).saturating_sub(1), hlen as u64 + 1, u64::MAX, 1 << 40, r]);
            put(b, 0, &v.to_le_bytes());
        }
        1 | 2 => {
            // A number in the JSON header (shapes, offsets, card fields) replaced.
            let digits: Vec<usize> = (8..hend).filter(|&i| b[i].is_ascii_digit() && !b[i - 1].is_ascii_digit()).collect();
            if let Some(&s) = digits.get(rng.below(digits.len().max(1))) {
                let e = (s..hend).find(|&i| !(b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e' || b[i] == b'-')).unwrap_or(hend);
                let new =
                    rng.pick(&["0", "1", "-1", "2", "3", "1e309", "NaN", "0.0", "4294967296", "18446744073709551615", "1000000", "65536", "16"]).to_string();
                let new = if rng.chance(0.3) { (rng.next() % 100_000).to_string() } else { new };
                let delta = new.len() as i64 - (e - s) as i64;
                b.splice(s..e, new.bytes());
                if rng.chance(0.9) {
                    let h = (hlen as i64 + delta).max(0) as u64;
                    put(b, 0, &h.to_le_bytes());
                }
            }
        }
        3 => {
            // A string in the header: dtype, a tensor name, a label.
            let quotes: Vec<usize> = (8..hend).filter(|&i| b[i] == b'"').collect();
            if quotes.len() >= 2 {
                let q = rng.below(quotes.len() - 1);
                let (s, e) = (quotes[q] + 1, quotes[q + 1]);
                let new = rng.pick(&["F64", "I8", "F16", "BOOL", "", "spikeword", "format_version", "layers.0.w_x", "yes"]).to_string();
                let delta = new.len() as i64 - (e - s) as i64;
                b.splice(s..e, new.bytes());
                let h = (hlen as i64 + delta).max(0) as u64;
                put(b, 0, &h.to_le_bytes());
            }
        }
        _ => {
            // The tensor data: a byte flip makes NaN or infinity now and then.
            if b.len() > hend + 4 {
                let i = hend + rng.below(b.len() - hend);
                let r = rng.next() as u8;
                b[i] = *rng.pick(&[0xff, 0x7f, 0x80, 0x00, r]);
            }
        }
    }
}

/// Recomputes every page's checksum, so damage inside a page reaches the parser.
pub fn fix_ogg_crcs(b: &mut [u8]) {
    for (at, head, body) in ogg_pages(b) {
        let end = (at + head + body).min(b.len());
        b[at + 22..at + 26].fill(0);
        let crc = ogg_crc(&b[at..end]);
        b[at + 22..at + 26].copy_from_slice(&crc.to_le_bytes());
    }
}

fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &x in data {
        crc ^= (x as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}
