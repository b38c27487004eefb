//! Carrying a source image's copyright metadata into a re-encoded output
//! (imgproxy's `keep_copyright`).
//!
//! Re-encoding drops all metadata. When the copyright has to be kept, the
//! caller reads it from the source with [`read`] and puts it into the freshly
//! encoded output with [`insert`]; on `Err` it sends the output without it.
//!
//! Only two facts are carried: the EXIF `Copyright` (0x8298) and `Artist`
//! (0x013B) tags of IFD0. The output gets a minimal EXIF block built by
//! [`exif_blob`] that holds nothing else (no camera data, no GPS position,
//! no thumbnail), so keeping the copyright never leaks other metadata.
//!
//! Reading is lenient about damage that comes *after* the metadata (the
//! facts found before the first structural error are kept) and strict about
//! the metadata itself (a malformed EXIF block yields nothing). Inserting is
//! strict: any structural problem in the output file is an `Err`, never a
//! half-written file. No input, however malformed, makes either panic.

/// EXIF tag number of `Artist` in IFD0.
const TAG_ARTIST: u16 = 0x013B;
/// EXIF tag number of `Copyright` in IFD0.
const TAG_COPYRIGHT: u16 = 0x8298;
/// The longest value kept or written, in bytes of UTF-8.
const MAX_VALUE_BYTES: usize = 1024;
/// What precedes the TIFF header in a JPEG APP1 segment (and, wrongly but
/// commonly, in PNG `eXIf` and WebP `EXIF` chunks).
const EXIF_PREFIX: &[u8] = b"Exif\0\0";
/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
/// JPEG marker codes used here.
const JPEG_SOI: u8 = 0xD8;
const JPEG_EOI: u8 = 0xD9;
const JPEG_SOS: u8 = 0xDA;
const JPEG_APP0: u8 = 0xE0;
const JPEG_APP1: u8 = 0xE1;
/// VP8X flag bits.
const VP8X_FLAG_EXIF: u8 = 0x08;
const VP8X_FLAG_ALPHA: u8 = 0x10;

/// The copyright facts of a source image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copyright {
    /// The EXIF `Copyright` tag (or PNG text keyword `Copyright`). Per the
    /// EXIF spec it may hold a photographer and an editor copyright separated
    /// by one NUL (`"photographer\0editor"`); that form is kept as it is.
    pub copyright: Option<String>,
    /// The EXIF `Artist` tag (or PNG text keyword `Author`).
    pub artist: Option<String>,
}

impl Copyright {
    /// True when there is nothing to carry: neither field holds a non-empty
    /// string (`Some("")` counts as absent).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        non_empty(self.copyright.as_deref()).is_none()
            && non_empty(self.artist.as_deref()).is_none()
    }

    /// Fills the fields that are still `None` from `other`.
    fn fill_from(&mut self, other: Copyright) {
        if self.copyright.is_none() {
            self.copyright = other.copyright;
        }
        if self.artist.is_none() {
            self.artist = other.artist;
        }
    }

    /// `Some(self)` unless it is empty.
    fn non_empty(self) -> Option<Copyright> {
        if self.is_empty() {
            None
        } else {
            Some(self)
        }
    }
}

/// Reads EXIF tags Copyright (0x8298) and Artist (0x013B) from IFD0 of the source's EXIF:
/// JPEG (APP1 "Exif\0\0" segment before SOS), PNG (`eXIf` chunk, and also a `tEXt`/`iTXt` chunk with keyword "Copyright"/"Author"), WebP (RIFF `EXIF` chunk; with or without the "Exif\0\0" prefix). Both byte orders (II/MM). ASCII values, trailing NULs and spaces trimmed, non-UTF-8 replaced lossily, each value capped at 1024 bytes. None when no such tag or malformed.
///
/// Details:
/// - `Artist` ends at its first NUL; `Copyright` keeps the EXIF
///   `"photographer\0editor"` form when the editor part is not blank, and
///   drops anything after a second NUL.
/// - Values of EXIF type BYTE or UNDEFINED are read like ASCII; other types
///   are ignored. A value of only NULs and spaces counts as absent, so
///   `Some` never holds an empty [`Copyright`].
/// - The cap cuts at a UTF-8 character boundary, so a value may be a few
///   bytes shorter than 1024.
/// - In PNG, a value from `eXIf` wins over one from a text chunk; the text
///   chunks only fill in what EXIF lacks. `tEXt` text that is not UTF-8 is
///   decoded as Latin-1 (as the PNG spec says); compressed `iTXt` and `zTXt`
///   chunks are skipped (no inflater here).
/// - A malformed EXIF block (bad header, IFD0 outside the block or cut
///   short) yields nothing; a tag whose value lies outside the block is
///   treated as absent. Damage in the file *after* the metadata does not
///   hide what was found before it.
/// - Formats other than JPEG, PNG and WebP give `None`.
#[must_use]
pub fn read(source: &[u8]) -> Option<Copyright> {
    match detect(source) {
        Format::Jpeg => read_jpeg(source),
        Format::Png => read_png(source),
        Format::WebP => read_webp(source),
        _ => None,
    }
}

/// A minimal EXIF blob (TIFF header, little-endian, IFD0 with only Copyright and/or Artist, no thumbnail), WITHOUT the "Exif\0\0" prefix.
///
/// Values are written as ASCII-typed (UTF-8 bytes as given), NUL-terminated,
/// each capped at 1024 bytes at a character boundary; `None` and empty
/// fields are left out. Entries are sorted by tag (Artist before Copyright),
/// values of more than four bytes sit after IFD0 at even offsets, and the
/// next-IFD offset is 0. An empty [`Copyright`] gives a valid TIFF with an
/// empty IFD0.
#[must_use]
pub fn exif_blob(c: &Copyright) -> Vec<u8> {
    let mut fields: Vec<(u16, Vec<u8>)> = Vec::with_capacity(2);
    if let Some(artist) = non_empty(c.artist.as_deref()) {
        fields.push((TAG_ARTIST, ascii_value(artist)));
    }
    if let Some(copyright) = non_empty(c.copyright.as_deref()) {
        fields.push((TAG_COPYRIGHT, ascii_value(copyright)));
    }
    // Header (8) + entry count (2) + entries (12 each) + next-IFD offset (4).
    let data_start = 8 + 2 + 12 * fields.len() + 4;
    let mut ifd = Vec::with_capacity(data_start);
    let mut data: Vec<u8> = Vec::new();
    ifd.extend_from_slice(b"II\x2A\x00");
    ifd.extend_from_slice(&8u32.to_le_bytes());
    ifd.extend_from_slice(&small_u16(fields.len()).to_le_bytes());
    for (tag, value) in &fields {
        ifd.extend_from_slice(&tag.to_le_bytes());
        ifd.extend_from_slice(&2u16.to_le_bytes()); // type ASCII
        ifd.extend_from_slice(&small_u32(value.len()).to_le_bytes());
        if value.len() <= 4 {
            let mut inline = value.clone();
            inline.resize(4, 0);
            ifd.extend_from_slice(&inline);
        } else {
            ifd.extend_from_slice(&small_u32(data_start + data.len()).to_le_bytes());
            data.extend_from_slice(value);
            if data.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    ifd.extend_from_slice(&0u32.to_le_bytes());
    ifd.extend_from_slice(&data);
    ifd
}

/// `encoded` (a freshly encoded JPEG, PNG or WebP, detected from its magic bytes) with the copyright inserted:
/// JPEG: an APP1 Exif segment right after SOI (after an APP0 JFIF if there is one);
/// PNG: an `eXIf` chunk before the first IDAT (correct CRC);
/// WebP: an `EXIF` chunk; a simple-format file (VP8/VP8L only) must be converted to extended format: add a VP8X chunk with the EXIF flag (0x08) set and canvas size read from the VP8/VP8L bitstream header (VP8: 14-bit width/height after the 3-byte frame tag + start code 9d 01 2a; VP8L: 14-bit width-1/height-1 after signature 0x2f), and ALPHA flag if VP8L has alpha bit set; an existing VP8X just gets the flag set and the chunk appended at the end; RIFF size updated; chunks padded to even length.
/// Other formats (AVIF, GIF, JXL) or malformed input: Err with a reason; the caller then sends the output without it.
///
/// Details:
/// - The EXIF block is [`exif_blob`]`(c)`. Any EXIF already in `encoded`
///   (Exif APP1 segments before SOS, `eXIf` chunks, `EXIF` chunks) is
///   replaced, so the output holds exactly one.
/// - JPEG: the segment goes after all APP0 segments that directly follow
///   SOI (JFIF and a JFXX extension), else right after SOI. Segments are
///   checked up to SOS; the entropy-coded data is copied untouched.
/// - PNG: the first chunk must be IHDR and there must be an IDAT; bytes
///   after IEND are kept. In an APNG the chunk goes before the first
///   `fcTL` if that precedes IDAT.
/// - WebP: in an extended file the `EXIF` chunk goes before an `XMP ` chunk
///   if there is one (the order the WebP spec gives), else at the end. A
///   simple file's VP8 frame must be a key frame. Bytes after the RIFF
///   payload are dropped.
///
/// # Errors
///
/// A static reason when `encoded` is not JPEG, PNG or WebP, when its
/// structure is broken (see above), or when `c` is empty (nothing to
/// insert).
pub fn insert(encoded: &[u8], c: &Copyright) -> Result<Vec<u8>, &'static str> {
    if c.is_empty() {
        return Err("nothing to insert: the copyright is empty");
    }
    match detect(encoded) {
        Format::Jpeg => insert_jpeg(encoded, &exif_blob(c)),
        Format::Png => insert_png(encoded, &exif_blob(c)),
        Format::WebP => insert_webp(encoded, &exif_blob(c)),
        Format::Gif => Err("GIF output cannot carry the copyright"),
        Format::Avif => Err("AVIF output cannot carry the copyright"),
        Format::IsoBmff => Err("HEIF/ISO-BMFF output cannot carry the copyright"),
        Format::Jxl => Err("JPEG XL output cannot carry the copyright"),
        Format::Unknown => Err("unrecognized output format"),
    }
}

// ---------------------------------------------------------------------------
// Format detection and byte helpers
// ---------------------------------------------------------------------------

/// The container formats told apart by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
    Avif,
    IsoBmff,
    Jxl,
    Unknown,
}

/// Tells the format from the first bytes.
fn detect(data: &[u8]) -> Format {
    let starts = |magic: &[u8]| data.starts_with(magic);
    if starts(&[0xFF, JPEG_SOI, 0xFF]) {
        Format::Jpeg
    } else if starts(PNG_SIGNATURE) {
        Format::Png
    } else if starts(b"RIFF") && data.get(8..12) == Some(b"WEBP".as_slice()) {
        Format::WebP
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Format::Gif
    } else if data.get(4..8) == Some(b"ftyp".as_slice()) {
        match data.get(8..12) {
            Some(b"avif" | b"avis") => Format::Avif,
            _ => Format::IsoBmff,
        }
    } else if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0CJXL \x0D\x0A\x87\x0A") {
        Format::Jxl
    } else {
        Format::Unknown
    }
}

/// `N` bytes of `data` from `at`, if they are all there.
fn array<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// `len` bytes of `data` from `at`, if they are all there.
fn span(data: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    data.get(at..at.checked_add(len)?)
}

/// A big-endian u32 at `at`.
fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    array(data, at).map(u32::from_be_bytes)
}

/// A little-endian u32 at `at`.
fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    array(data, at).map(u32::from_le_bytes)
}

/// A length read from a file as a `usize`.
fn to_usize(n: u32) -> Option<usize> {
    usize::try_from(n).ok()
}

/// `n` (known to be small) as a u16, saturating.
fn small_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// `n` (known to be small) as a u32, saturating.
fn small_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The string in `v` unless it is absent or empty.
fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
    }
}

/// The bytes of an EXIF ASCII value for `s`: capped, NUL-terminated.
fn ascii_value(s: &str) -> Vec<u8> {
    let mut s = s.to_owned();
    truncate_utf8(&mut s, MAX_VALUE_BYTES);
    let mut bytes = s.into_bytes();
    bytes.push(0);
    bytes
}

/// `b` without trailing NULs and spaces.
fn trim_end_bytes(b: &[u8]) -> &[u8] {
    let keep = b
        .iter()
        .rposition(|&c| c != 0 && c != b' ')
        .map_or(0, |i| i + 1);
    b.get(..keep).unwrap_or_default()
}

/// How the bytes of a text value are to be decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    /// EXIF ASCII: UTF-8, invalid sequences replaced.
    Exif,
    /// PNG `tEXt`: UTF-8 if valid, else Latin-1.
    Latin1,
}

/// Turns raw value bytes into the kept string: NUL handling (see [`read`]),
/// trailing NULs and spaces trimmed, decoded, capped. `None` when blank.
fn clean_value(raw: &[u8], two_part: bool, text: Text) -> Option<String> {
    let mut parts = raw.splitn(3, |&b| b == 0);
    let first = parts.next().unwrap_or_default();
    let kept = match parts.next() {
        Some(second) if two_part && !trim_end_bytes(second).is_empty() => {
            raw.get(..first.len() + 1 + second.len()).unwrap_or(first)
        }
        _ => first,
    };
    // Every input byte becomes at least one output byte, so this cut (a
    // little past the cap) only bounds the work; the real cap is below.
    let kept = kept.get(..MAX_VALUE_BYTES + 4).unwrap_or(kept);
    let mut s = match std::str::from_utf8(kept) {
        Ok(s) => s.to_owned(),
        Err(_) if text == Text::Latin1 => kept.iter().map(|&b| char::from(b)).collect(),
        Err(_) => String::from_utf8_lossy(kept).into_owned(),
    };
    truncate_utf8(&mut s, MAX_VALUE_BYTES);
    let trimmed = s.trim_end_matches([' ', '\0']).len();
    s.truncate(trimmed);
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

// ---------------------------------------------------------------------------
// EXIF (TIFF) parsing
// ---------------------------------------------------------------------------

/// The byte order of a TIFF block.
#[derive(Clone, Copy)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn u16(self, data: &[u8], at: usize) -> Option<u16> {
        let b = array(data, at)?;
        Some(match self {
            Order::Little => u16::from_le_bytes(b),
            Order::Big => u16::from_be_bytes(b),
        })
    }

    fn u32(self, data: &[u8], at: usize) -> Option<u32> {
        let b = array(data, at)?;
        Some(match self {
            Order::Little => u32::from_le_bytes(b),
            Order::Big => u32::from_be_bytes(b),
        })
    }
}

/// Parses an EXIF block that may or may not start with "Exif\0\0".
fn parse_exif_any(block: &[u8]) -> Option<Copyright> {
    parse_tiff(block.strip_prefix(EXIF_PREFIX).unwrap_or(block))
}

/// Reads Copyright and Artist from IFD0 of a TIFF block (offsets relative
/// to its start).
fn parse_tiff(tiff: &[u8]) -> Option<Copyright> {
    let order = match array::<4>(tiff, 0)? {
        [b'I', b'I', 0x2A, 0x00] => Order::Little,
        [b'M', b'M', 0x00, 0x2A] => Order::Big,
        _ => return None,
    };
    let ifd0 = to_usize(order.u32(tiff, 4)?)?;
    if ifd0 < 8 {
        return None;
    }
    let count = usize::from(order.u16(tiff, ifd0)?);
    let entries = span(tiff, ifd0.checked_add(2)?, count * 12)?;
    let mut out = Copyright::default();
    for entry in entries.chunks_exact(12) {
        let tag = order.u16(entry, 0)?;
        let (field, two_part) = match tag {
            TAG_COPYRIGHT => (&mut out.copyright, true),
            TAG_ARTIST => (&mut out.artist, false),
            _ => continue,
        };
        if field.is_none() {
            *field = entry_bytes(tiff, entry, order)
                .and_then(|raw| clean_value(raw, two_part, Text::Exif));
        }
    }
    out.non_empty()
}

/// The value bytes of a byte-sized IFD entry (BYTE, ASCII or UNDEFINED):
/// inline when at most four, else at the offset. `None` for other types
/// or a value outside the block.
fn entry_bytes<'a>(tiff: &'a [u8], entry: &'a [u8], order: Order) -> Option<&'a [u8]> {
    if !matches!(order.u16(entry, 2)?, 1 | 2 | 7) {
        return None;
    }
    let count = to_usize(order.u32(entry, 4)?)?;
    if count <= 4 {
        span(entry, 8, count)
    } else {
        span(tiff, to_usize(order.u32(entry, 8)?)?, count)
    }
}

// ---------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------

/// A marker segment with a length field.
struct JpegSegment {
    marker: u8,
    /// Offset of its first 0xFF (fill bytes included).
    start: usize,
    /// Offset of its payload (after the length field).
    payload: usize,
    /// Offset just past it.
    end: usize,
}

impl JpegSegment {
    fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.payload..self.end).unwrap_or_default()
    }

    fn is_exif(&self, data: &[u8]) -> bool {
        self.marker == JPEG_APP1 && self.payload(data).starts_with(EXIF_PREFIX)
    }
}

/// Walks the marker segments after SOI, pushing each to `segments`, and
/// returns the offset of the SOS marker. On an error the segments pushed so
/// far are sound.
fn jpeg_segments(data: &[u8], segments: &mut Vec<JpegSegment>) -> Result<usize, &'static str> {
    if !data.starts_with(&[0xFF, JPEG_SOI]) {
        return Err("not a JPEG");
    }
    let mut pos = 2;
    loop {
        if data.get(pos) != Some(&0xFF) {
            return Err("malformed JPEG: expected a marker");
        }
        let start = pos;
        let mut p = pos + 1;
        while data.get(p) == Some(&0xFF) {
            p += 1;
        }
        let marker = *data.get(p).ok_or("malformed JPEG: truncated marker")?;
        p += 1;
        match marker {
            JPEG_SOS => return Ok(start),
            JPEG_EOI => return Err("malformed JPEG: EOI before SOS"),
            0x00 => return Err("malformed JPEG: stuffed byte outside scan data"),
            0x01 | 0xD0..=0xD7 => {
                // Standalone markers have no length.
                pos = p;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes(
            array(data, p).ok_or("malformed JPEG: truncated segment length")?,
        ));
        if len < 2 {
            return Err("malformed JPEG: segment length below 2");
        }
        let end = p + len;
        if end > data.len() {
            return Err("malformed JPEG: segment runs past the end");
        }
        segments.push(JpegSegment {
            marker,
            start,
            payload: p + 2,
            end,
        });
        pos = end;
    }
}

fn read_jpeg(source: &[u8]) -> Option<Copyright> {
    let mut segments = Vec::new();
    // Lenient: damage after the metadata does not hide it.
    let _ = jpeg_segments(source, &mut segments);
    segments
        .iter()
        .filter(|s| s.is_exif(source))
        .find_map(|s| parse_tiff(s.payload(source).get(EXIF_PREFIX.len()..)?))
}

fn insert_jpeg(encoded: &[u8], blob: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut segments = Vec::new();
    let sos = jpeg_segments(encoded, &mut segments)?;
    let length = u16::try_from(2 + EXIF_PREFIX.len() + blob.len())
        .map_err(|_| "EXIF block too large for a JPEG segment")?;
    let mut app1 = Vec::with_capacity(usize::from(length) + 2);
    app1.extend_from_slice(&[0xFF, JPEG_APP1]);
    app1.extend_from_slice(&length.to_be_bytes());
    app1.extend_from_slice(EXIF_PREFIX);
    app1.extend_from_slice(blob);

    let insert_at = segments
        .iter()
        .take_while(|s| s.marker == JPEG_APP0)
        .last()
        .map_or(2, |s| s.end);
    let mut out = Vec::with_capacity(encoded.len() + app1.len());
    out.extend_from_slice(encoded.get(..insert_at).ok_or("malformed JPEG")?);
    out.extend_from_slice(&app1);
    let mut pos = insert_at;
    for segment in segments.iter().filter(|s| s.is_exif(encoded)) {
        // Segments before `insert_at` are APP0, never Exif.
        out.extend_from_slice(encoded.get(pos..segment.start).ok_or("malformed JPEG")?);
        pos = segment.end;
    }
    out.extend_from_slice(encoded.get(pos..sos).ok_or("malformed JPEG")?);
    out.extend_from_slice(encoded.get(sos..).ok_or("malformed JPEG")?);
    Ok(out)
}

// ---------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------

/// A PNG chunk.
struct PngChunk {
    kind: [u8; 4],
    /// Offset of its length field.
    start: usize,
    /// Offset of its data.
    data: usize,
    /// Length of its data.
    len: usize,
    /// Offset just past its CRC.
    end: usize,
}

impl PngChunk {
    fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        span(file, self.data, self.len).unwrap_or_default()
    }
}

/// Walks the chunks up to and including IEND (or the end of the data),
/// pushing each to `chunks`, and returns the offset just past the last one.
/// On an error the chunks pushed so far are sound.
fn png_chunks(data: &[u8], chunks: &mut Vec<PngChunk>) -> Result<usize, &'static str> {
    if !data.starts_with(PNG_SIGNATURE) {
        return Err("not a PNG");
    }
    let mut pos = PNG_SIGNATURE.len();
    while pos < data.len() {
        let len = be_u32(data, pos).ok_or("malformed PNG: truncated chunk header")?;
        if len > 0x7FFF_FFFF {
            return Err("malformed PNG: chunk length out of range");
        }
        let len = to_usize(len).ok_or("malformed PNG: chunk too large")?;
        let kind: [u8; 4] = array(data, pos + 4).ok_or("malformed PNG: truncated chunk header")?;
        let end = (pos + 12)
            .checked_add(len)
            .filter(|&end| end <= data.len())
            .ok_or("malformed PNG: chunk runs past the end")?;
        chunks.push(PngChunk {
            kind,
            start: pos,
            data: pos + 8,
            len,
            end,
        });
        pos = end;
        if &kind == b"IEND" {
            break;
        }
    }
    Ok(pos)
}

/// The value of a `tEXt` or uncompressed `iTXt` chunk as (keyword, text).
fn png_text<'a>(kind: &[u8; 4], data: &'a [u8]) -> Option<(&'a [u8], &'a [u8], Text)> {
    let nul = data.iter().position(|&b| b == 0)?;
    let keyword = data.get(..nul)?;
    let rest = data.get(nul + 1..)?;
    match kind {
        b"tEXt" => Some((keyword, rest, Text::Latin1)),
        b"iTXt" => {
            // Compression flag, compression method, language tag\0,
            // translated keyword\0, text.
            let [flag, _method] = array(rest, 0)?;
            if flag != 0 {
                return None;
            }
            let mut fields = rest.get(2..)?.splitn(3, |&b| b == 0);
            let (_language, _translated) = (fields.next()?, fields.next()?);
            Some((keyword, fields.next()?, Text::Exif))
        }
        _ => None,
    }
}

fn read_png(source: &[u8]) -> Option<Copyright> {
    let mut chunks = Vec::new();
    // Lenient: damage after the metadata does not hide it.
    let _ = png_chunks(source, &mut chunks);
    let mut exif: Option<Copyright> = None;
    let mut text = Copyright::default();
    for chunk in &chunks {
        let data = chunk.data(source);
        if &chunk.kind == b"eXIf" {
            if exif.is_none() {
                exif = parse_exif_any(data);
            }
            continue;
        }
        let Some((keyword, value, decoding)) = png_text(&chunk.kind, data) else {
            continue;
        };
        let field = match keyword {
            b"Copyright" => &mut text.copyright,
            b"Author" => &mut text.artist,
            _ => continue,
        };
        if field.is_none() {
            *field = clean_value(value, false, decoding);
        }
    }
    let mut out = exif.unwrap_or_default();
    out.fill_from(text);
    out.non_empty()
}

/// Appends a PNG chunk with its CRC.
fn push_png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Result<(), &'static str> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|&n| n <= 0x7FFF_FFFF)
        .ok_or("chunk too large for PNG")?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    Ok(())
}

fn insert_png(encoded: &[u8], blob: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut chunks = Vec::new();
    let tail = png_chunks(encoded, &mut chunks)?;
    if chunks.first().map(|c| &c.kind) != Some(b"IHDR") {
        return Err("malformed PNG: IHDR is not the first chunk");
    }
    if !chunks.iter().any(|c| &c.kind == b"IDAT") {
        return Err("malformed PNG: no IDAT chunk");
    }
    let mut out = Vec::with_capacity(encoded.len() + blob.len() + 12);
    out.extend_from_slice(PNG_SIGNATURE);
    let mut inserted = false;
    for chunk in &chunks {
        if &chunk.kind == b"eXIf" {
            continue;
        }
        // In an APNG the first frame's fcTL precedes IDAT; keep it next to it.
        if (&chunk.kind == b"IDAT" || &chunk.kind == b"fcTL") && !inserted {
            push_png_chunk(&mut out, b"eXIf", blob)?;
            inserted = true;
        }
        out.extend_from_slice(encoded.get(chunk.start..chunk.end).ok_or("malformed PNG")?);
    }
    out.extend_from_slice(encoded.get(tail..).ok_or("malformed PNG")?);
    Ok(out)
}

// ---------------------------------------------------------------------------
// WebP
// ---------------------------------------------------------------------------

/// A RIFF chunk of a WebP file.
struct RiffChunk {
    fourcc: [u8; 4],
    /// Offset of its payload.
    payload: usize,
    /// Length of its payload (without padding).
    len: usize,
}

impl RiffChunk {
    fn payload<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        span(file, self.payload, self.len).unwrap_or_default()
    }
}

/// Walks the chunks inside the RIFF payload, pushing each to `chunks`.
/// On an error the chunks pushed so far are sound. A missing pad byte after
/// the last chunk is tolerated. When `strict` is false, a RIFF size larger
/// than the file (a truncated file) is cut to the file.
fn webp_chunks(data: &[u8], chunks: &mut Vec<RiffChunk>, strict: bool) -> Result<(), &'static str> {
    if !data.starts_with(b"RIFF") || data.get(8..12) != Some(b"WEBP".as_slice()) {
        return Err("not a WebP");
    }
    let size = le_u32(data, 4).and_then(to_usize).ok_or("malformed WebP")?;
    let mut riff_end = size
        .checked_add(8)
        .filter(|_| size >= 4)
        .ok_or("malformed WebP: RIFF size out of range")?;
    if riff_end > data.len() {
        if strict {
            return Err("malformed WebP: RIFF size exceeds the file");
        }
        riff_end = data.len();
    }
    let body = data.get(..riff_end).ok_or("malformed WebP")?;
    let mut pos = 12;
    while pos < riff_end {
        let fourcc: [u8; 4] = array(body, pos).ok_or("malformed WebP: truncated chunk header")?;
        let len = le_u32(body, pos + 4)
            .and_then(to_usize)
            .ok_or("malformed WebP: truncated chunk header")?;
        let payload = pos + 8;
        let payload_end = payload
            .checked_add(len)
            .filter(|&end| end <= riff_end)
            .ok_or("malformed WebP: chunk runs past the RIFF end")?;
        chunks.push(RiffChunk {
            fourcc,
            payload,
            len,
        });
        pos = (payload_end + (len & 1)).min(riff_end);
    }
    Ok(())
}

fn read_webp(source: &[u8]) -> Option<Copyright> {
    let mut chunks = Vec::new();
    // Lenient: damage after the metadata does not hide it.
    let _ = webp_chunks(source, &mut chunks, false);
    chunks
        .iter()
        .filter(|c| &c.fourcc == b"EXIF")
        .find_map(|c| parse_exif_any(c.payload(source)))
}

/// Appends a RIFF chunk, padded to even length.
fn push_riff_chunk(
    out: &mut Vec<u8>,
    fourcc: &[u8; 4],
    payload: &[u8],
) -> Result<(), &'static str> {
    let len = u32::try_from(payload.len()).map_err(|_| "chunk too large for RIFF")?;
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

/// Canvas width, height and whether alpha is used, from a `VP8 ` payload.
fn vp8_size(payload: &[u8]) -> Result<(u32, u32, bool), &'static str> {
    let [tag0, _, _, s0, s1, s2, w0, w1, h0, h1] =
        array::<10>(payload, 0).ok_or("malformed WebP: VP8 header truncated")?;
    if tag0 & 1 != 0 {
        return Err("malformed WebP: VP8 frame is not a key frame");
    }
    if [s0, s1, s2] != [0x9D, 0x01, 0x2A] {
        return Err("malformed WebP: VP8 start code missing");
    }
    let width = u32::from(u16::from_le_bytes([w0, w1]) & 0x3FFF);
    let height = u32::from(u16::from_le_bytes([h0, h1]) & 0x3FFF);
    if width == 0 || height == 0 {
        return Err("malformed WebP: VP8 frame has a zero dimension");
    }
    Ok((width, height, false))
}

/// Canvas width, height and the alpha hint, from a `VP8L` payload.
fn vp8l_size(payload: &[u8]) -> Result<(u32, u32, bool), &'static str> {
    let [signature, b0, b1, b2, b3] =
        array::<5>(payload, 0).ok_or("malformed WebP: VP8L header truncated")?;
    if signature != 0x2F {
        return Err("malformed WebP: VP8L signature missing");
    }
    let bits = u32::from_le_bytes([b0, b1, b2, b3]);
    if bits >> 29 != 0 {
        return Err("malformed WebP: unknown VP8L version");
    }
    let width = (bits & 0x3FFF) + 1;
    let height = ((bits >> 14) & 0x3FFF) + 1;
    let alpha = (bits >> 28) & 1 == 1;
    Ok((width, height, alpha))
}

/// A VP8X payload for a still image of the given canvas size.
fn vp8x_payload(flags: u8, width: u32, height: u32) -> [u8; 10] {
    let [w0, w1, w2, _] = width.saturating_sub(1).to_le_bytes();
    let [h0, h1, h2, _] = height.saturating_sub(1).to_le_bytes();
    [flags, 0, 0, 0, w0, w1, w2, h0, h1, h2]
}

fn insert_webp(encoded: &[u8], blob: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut chunks = Vec::new();
    webp_chunks(encoded, &mut chunks, true)?;
    let first = chunks.first().ok_or("malformed WebP: no chunks")?;
    let mut body = Vec::with_capacity(encoded.len() + blob.len() + 32);
    let mut rest = chunks.iter();
    match &first.fourcc {
        b"VP8X" => {
            let mut vp8x = first.payload(encoded).to_vec();
            if vp8x.len() < 10 {
                return Err("malformed WebP: VP8X chunk too short");
            }
            if let Some(flags) = vp8x.first_mut() {
                *flags |= VP8X_FLAG_EXIF;
            }
            push_riff_chunk(&mut body, b"VP8X", &vp8x)?;
            rest.next();
        }
        b"VP8 " | b"VP8L" => {
            let payload = first.payload(encoded);
            let (width, height, alpha) = if &first.fourcc == b"VP8 " {
                vp8_size(payload)?
            } else {
                vp8l_size(payload)?
            };
            let flags = VP8X_FLAG_EXIF | if alpha { VP8X_FLAG_ALPHA } else { 0 };
            push_riff_chunk(&mut body, b"VP8X", &vp8x_payload(flags, width, height))?;
        }
        _ => return Err("malformed WebP: first chunk is not VP8X, VP8 or VP8L"),
    }
    let mut inserted = false;
    for chunk in rest {
        if &chunk.fourcc == b"EXIF" {
            continue;
        }
        if &chunk.fourcc == b"XMP " && !inserted {
            push_riff_chunk(&mut body, b"EXIF", blob)?;
            inserted = true;
        }
        push_riff_chunk(&mut body, &chunk.fourcc, chunk.payload(encoded))?;
    }
    if !inserted {
        push_riff_chunk(&mut body, b"EXIF", blob)?;
    }
    let riff_size = u32::try_from(body.len() + 4).map_err(|_| "output too large for RIFF")?;
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_size.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests;
