//! The VMDK descriptor: the text naming the disk's kind, its extents, its identity (CID) and
//! its parent, kept in a file of its own or embedded in a hosted sparse extent.
//!
//! ```text
//! # Disk DescriptorFile
//! version=1
//! CID=ae2f709d
//! parentCID=ffffffff
//! createType="monolithicSparse"
//! parentFileNameHint="base.vmdk"
//! RW 20480 SPARSE "disk.vmdk"
//! ddb.adapterType = "ide"
//! ```

use std::path::Path;

use crate::error::{Error, Result};

/// The first line every descriptor starts with.
pub const SIGNATURE: &str = "# Disk DescriptorFile";

/// A descriptor longer than this is not a descriptor (qemu's limit is smaller still).
pub const MAX_LENGTH: u64 = 1 << 20;

/// The parentCID of a disk without a parent.
pub const NO_PARENT_CID: u32 = 0xffff_ffff;

/// The disk kinds whose extents this crate reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateType {
    MonolithicSparse,
    TwoGbMaxExtentSparse,
    MonolithicFlat,
    TwoGbMaxExtentFlat,
    StreamOptimized,
}

impl CreateType {
    fn parse(path: &Path, name: &str) -> Result<CreateType> {
        Ok(match name {
            "monolithicSparse" => CreateType::MonolithicSparse,
            "twoGbMaxExtentSparse" => CreateType::TwoGbMaxExtentSparse,
            "monolithicFlat" => CreateType::MonolithicFlat,
            "twoGbMaxExtentFlat" => CreateType::TwoGbMaxExtentFlat,
            "streamOptimized" => CreateType::StreamOptimized,
            "seSparse" => {
                return Err(Error::unsupported(
                    path,
                    "VMDK createType",
                    "seSparse (the ESXi space-efficient sparse format) is not supported; convert the disk with vmkfstools or qemu-img to monolithicSparse",
                ))
            }
            "vmfs" | "vmfsSparse" | "vmfsThin" | "vmfsPreallocated" | "vmfsEagerZeroedThick"
            | "vmfsRaw" | "vmfsRDM" | "vmfsRDMP" | "vmfsRawDeviceMap"
            | "vmfsPassthroughRawDeviceMap" => {
                return Err(Error::unsupported(
                    path,
                    "VMDK createType",
                    format!("{name} is an ESXi datastore kind, which only ESXi reads; export the disk (OVF/OVA) or convert it to monolithicSparse"),
                ))
            }
            other => {
                return Err(Error::unsupported(
                    path,
                    "VMDK createType",
                    format!("{other:?} is not supported; monolithicSparse, twoGbMaxExtentSparse, monolithicFlat, twoGbMaxExtentFlat and streamOptimized are"),
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CreateType::MonolithicSparse => "monolithicSparse",
            CreateType::TwoGbMaxExtentSparse => "twoGbMaxExtentSparse",
            CreateType::MonolithicFlat => "monolithicFlat",
            CreateType::TwoGbMaxExtentFlat => "twoGbMaxExtentFlat",
            CreateType::StreamOptimized => "streamOptimized",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentType {
    Flat,
    Sparse,
    Zero,
}

/// One line of the extent description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: Access,
    /// The extent's share of the virtual disk, in 512-byte sectors.
    pub sectors: u64,
    pub kind: ExtentType,
    /// The extent file, relative to the descriptor's directory (none for ZERO).
    pub file_name: Option<String>,
    /// Where a FLAT extent's data starts in its file, in sectors.
    pub offset: u64,
}

#[derive(Clone, Debug)]
pub struct Descriptor {
    pub create_type: CreateType,
    pub cid: u32,
    pub parent_cid: u32,
    pub parent_file_name_hint: Option<String>,
    pub extents: Vec<ExtentLine>,
    /// Where the CID's hexadecimal digits are in the text, to change it in place.
    pub cid_digits: std::ops::Range<usize>,
    /// The `ddb.` lines describing the virtual hardware (geometry, adapter, hardware version),
    /// which a child copies.
    pub hardware_lines: Vec<String>,
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

fn parse_cid(path: &Path, key: &str, value: &str) -> Result<u32> {
    u32::from_str_radix(value.trim(), 16).map_err(|_| {
        Error::corrupt(
            path,
            "VMDK descriptor",
            format!("{key}={value:?} is not a 32-bit hexadecimal number"),
        )
    })
}

fn parse_extent(path: &Path, line: &str) -> Result<Option<ExtentLine>> {
    let mut words = line.split_whitespace();
    let access = match words.next() {
        Some("RW") => Access::ReadWrite,
        Some("RDONLY") => Access::ReadOnly,
        Some("NOACCESS") => {
            return Err(Error::unsupported(
                path,
                "VMDK extent",
                format!("the extent {line:?} is NOACCESS, so the disk cannot be read whole"),
            ))
        }
        _ => return Ok(None),
    };
    let bad = |reason: String| Error::corrupt(path, "VMDK extent", reason);
    let sectors = words
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad(format!("{line:?} gives no size in sectors")))?;
    let kind = match words.next() {
        Some("FLAT") => ExtentType::Flat,
        Some("SPARSE") => ExtentType::Sparse,
        Some("ZERO") => ExtentType::Zero,
        Some(kind @ ("VMFS" | "VMFSSPARSE" | "VMFSRDM" | "VMFSRAW" | "SESPARSE")) => {
            return Err(Error::unsupported(
                path,
                "VMDK extent",
                format!("{kind} extents ({line:?}) exist only on ESXi datastores"),
            ))
        }
        other => return Err(bad(format!("{line:?}: unknown extent type {other:?}"))),
    };
    // The file name is quoted and may hold spaces; the FLAT offset follows it.
    let mut rest = line;
    for _ in 0..3 {
        rest = rest.trim_start();
        rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
    }
    let rest = rest.trim();
    let (file_name, offset) = if kind == ExtentType::Zero {
        (None, 0)
    } else {
        let quoted = rest
            .strip_prefix('"')
            .and_then(|r| r.find('"').map(|end| (&r[..end], &r[end + 1..])));
        let Some((name, after)) = quoted else {
            return Err(bad(format!("{line:?} names no file in quotes")));
        };
        let offset = match after.trim() {
            "" => 0,
            text => text
                .parse::<u64>()
                .map_err(|_| bad(format!("{line:?}: the offset {text:?} is not a number")))?,
        };
        (Some(name.to_string()), offset)
    };
    Ok(Some(ExtentLine {
        access,
        sectors,
        kind,
        file_name,
        offset,
    }))
}

impl Descriptor {
    /// Parses descriptor text (NUL padding after it is ignored).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Descriptor> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = std::str::from_utf8(&bytes[..end]).map_err(|e| {
            Error::corrupt(
                path,
                "VMDK descriptor",
                format!("not UTF-8 text (byte {})", e.valid_up_to()),
            )
        })?;
        let mut create_type = None;
        let mut cid = None;
        let mut parent_cid = NO_PARENT_CID;
        let mut parent_file_name_hint = None;
        let mut extents = Vec::new();
        let mut hardware_lines = Vec::new();
        let mut position = 0usize;
        for raw_line in text.split_inclusive('\n') {
            let line_start = position;
            position += raw_line.len();
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(extent) = parse_extent(path, line)? {
                extents.push(extent);
                continue;
            }
            if ["ddb.geometry.", "ddb.adapterType", "ddb.virtualHWVersion"]
                .iter()
                .any(|prefix| line.starts_with(prefix))
            {
                hardware_lines.push(line.to_string());
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key.trim() {
                "CID" => {
                    let digits = value.trim();
                    let value_start = raw_line.find('=').map_or(0, |at| at + 1);
                    let within = value_start + raw_line[value_start..].find(digits).unwrap_or(0);
                    let start = line_start + within;
                    cid = Some((parse_cid(path, "CID", value)?, start..start + digits.len()));
                }
                "parentCID" => parent_cid = parse_cid(path, "parentCID", value)?,
                "createType" => create_type = Some(CreateType::parse(path, unquote(value))?),
                "parentFileNameHint" => parent_file_name_hint = Some(unquote(value).to_string()),
                _ => {}
            }
        }
        let missing =
            |what: &str| Error::corrupt(path, "VMDK descriptor", format!("it has no {what}"));
        let create_type = create_type.ok_or_else(|| missing("createType"))?;
        let (cid, cid_digits) = cid.ok_or_else(|| missing("CID"))?;
        if extents.is_empty() {
            return Err(missing("extent"));
        }
        if parent_cid != NO_PARENT_CID && parent_file_name_hint.is_none() {
            return Err(Error::corrupt(
                path,
                "VMDK descriptor",
                format!("parentCID is {parent_cid:08x} but no parentFileNameHint names the parent"),
            ));
        }
        Ok(Descriptor {
            create_type,
            cid,
            parent_cid,
            parent_file_name_hint,
            extents,
            cid_digits,
            hardware_lines,
        })
    }

    /// The virtual disk size: the sum of the extents' sizes, in bytes.
    pub fn disk_size(&self, path: &Path) -> Result<u64> {
        self.extents
            .iter()
            .try_fold(0u64, |sum, extent| {
                sum.checked_add(extent.sectors.checked_mul(512)?)
            })
            .ok_or_else(|| Error::corrupt(path, "VMDK descriptor", "the extents' sizes overflow"))
    }
}

/// The text of a new CID for one of `width` hexadecimal digits: the same width, so the
/// descriptor keeps its length and the change is one small write in place. A narrower CID
/// keeps only its low digits; a wider one (`CID=0fffffffe` still holds 32 bits) gets leading
/// zeros, which qemu's and VMware's hexadecimal parsing read as the same value.
pub fn cid_text(value: u32, width: usize) -> String {
    let width = width.max(1);
    let value = if width >= 8 {
        value
    } else {
        value & ((1u32 << (4 * width)) - 1)
    };
    format!("{value:0width$x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# Disk DescriptorFile\nversion=1\nCID=ae2f709d\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentFlat\"\n\n# Extent description\nRW  20480 FLAT\t\"a b-f001.vmdk\" 0\nRDONLY 8 ZERO\nRW 100 SPARSE \"c.vmdk\"\n\nddb.adapterType = \"ide\"\n";

    #[test]
    fn extents_cid_and_kind_are_read() {
        let descriptor = Descriptor::parse(Path::new("d.vmdk"), TEXT.as_bytes()).unwrap();
        assert_eq!(descriptor.create_type, CreateType::TwoGbMaxExtentFlat);
        assert_eq!(descriptor.cid, 0xae2f709d);
        assert_eq!(&TEXT[descriptor.cid_digits.clone()], "ae2f709d");
        assert_eq!(descriptor.extents.len(), 3);
        assert_eq!(
            descriptor.extents[0].file_name.as_deref(),
            Some("a b-f001.vmdk")
        );
        assert_eq!(descriptor.extents[1].kind, ExtentType::Zero);
        assert_eq!(descriptor.extents[1].access, Access::ReadOnly);
        assert_eq!(
            descriptor.disk_size(Path::new("d")).unwrap(),
            (20480 + 8 + 100) * 512
        );
    }

    #[test]
    fn esxi_kinds_are_refused_by_name() {
        for kind in ["vmfsSparse", "seSparse", "vmfsRDM", "custom"] {
            let text = TEXT.replace("twoGbMaxExtentFlat", kind);
            let error = Descriptor::parse(Path::new("d.vmdk"), text.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(kind), "{error}");
        }
    }

    #[test]
    fn a_new_cid_keeps_the_width() {
        assert_eq!(cid_text(0x1234_5678, 8), "12345678");
        assert_eq!(cid_text(0xabcd_ef12, 4), "ef12");
        assert_eq!(cid_text(5, 8), "00000005");
        assert_eq!(cid_text(0x1234_5678, 9), "012345678");
        assert_eq!(cid_text(0xfedc_ba98, 12), "0000fedcba98");
    }

    #[test]
    fn a_cid_wider_than_eight_digits_is_read_whole() {
        let text = TEXT.replace("CID=ae2f709d", "CID=0fffffffe");
        let descriptor = Descriptor::parse(Path::new("d.vmdk"), text.as_bytes()).unwrap();
        assert_eq!(descriptor.cid, 0xffff_fffe);
        assert_eq!(&text[descriptor.cid_digits.clone()], "0fffffffe");
    }
}
