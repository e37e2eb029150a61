//! qcow2 images (versions 2 and 3), read and written in place without qemu.
//!
//! One module per on-disk structure: [`header`] (with its extensions), [`l2`] (L1 and L2
//! entries, extended L2 subclusters), [`refcount`] (table, blocks and cluster allocation),
//! [`compressed`] (deflate clusters), [`snapshots`] (the internal snapshot table),
//! [`backing`] (the backing chain) and [`check`] (references counted against refcounts). Writes only ever go to this file; a backing file is
//! opened read-only.
//!
//! # Writing
//!
//! A write lands in place in a cluster this image owns alone (its L1 and L2 entries have the
//! COPIED flag), once that cluster is checked to lie within the file, to hold none of the
//! image's structures ([`metadata_map`], gathered before the first write) and to have a
//! refcount of exactly 1; an entry that fails is damaged or crafted, and the write is refused
//! before any byte of it is written. Anything else — an unallocated, zero, compressed or
//! shared cluster — is copied on write into a new cluster appended at the end of the file, in
//! this order, each step flushed before the next:
//!
//! 1. the whole new cluster (what the guest saw there, with the write applied);
//! 2. its refcount, set to 1 (a missing refcount block is first written where it counts
//!    itself, then entered in the refcount table);
//! 3. the L2 entry (8 or 16 bytes within one sector), which makes the new data visible;
//! 4. the old cluster's refcount dropped (compressed or shared clusters).
//!
//! A missing L2 table is made empty the same way (table, refcount, then the L1 entry); a
//! shared one (after an internal snapshot) is copied the same way and the old table's
//! refcount dropped last (a data cluster's refcount counts the L1 tables that reach it, as
//! qemu keeps it, so copying a table changes none). A crash therefore
//! leaves at worst clusters whose refcount is higher than their references — leaks, as qemu
//! itself allows — never a reference to a cluster counted too low.

mod backing;
mod check;
mod compressed;
pub mod create;
pub mod header;
mod l2;
mod metadata_map;
mod refcount;
pub mod snapshots;

use std::collections::HashMap;
use std::path::Path;

use crate::block_device::{check_range, check_write, BlockDevice};
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile, LocalFile};
use header::{CompressionType, Header};
use l2::{L1Entry, L2Layout, Mapping, ALL_SUBCLUSTERS, COPIED};
use metadata_map::MetadataMap;
use refcount::Refcounts;

pub use backing::BackingLink;

/// The most L2 table bytes kept in memory; the cache is emptied when it grows past this.
const L2_CACHE_BYTES: usize = 64 << 20;

/// The largest active L1 table qemu opens (`QCOW_MAX_L1_SIZE`, enough for 2 PB at 64 KiB
/// clusters).
pub(crate) const MAX_L1_BYTES: u64 = 32 << 20;

pub struct Qcow2 {
    file: Box<dyn ImageFile>,
    header: Header,
    layout: L2Layout,
    l1: Vec<L1Entry>,
    refcounts: Refcounts,
    backing: Option<Box<dyn BlockDevice>>,
    backing_link: Option<BackingLink>,
    l2_cache: HashMap<u64, Vec<u8>>,
    /// The autoclear bits are cleared before the first write (qemu's rule for a writer that
    /// does not keep, say, dirty bitmaps up to date).
    autoclear_cleared: bool,
    /// The image's structures, gathered at the first write, against which in-place writes are
    /// checked.
    metadata_map: Option<MetadataMap>,
    /// The data clusters this open appended, by host cluster, with the guest cluster each
    /// holds: written in place later without the checks, but only for that guest cluster.
    appended: HashMap<u64, u64>,
}

impl Qcow2 {
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        Self::open_file(Box::new(LocalFile::open(path, writable)?))
    }

    pub fn open_file(file: Box<dyn ImageFile>) -> Result<Self> {
        Self::open_at_depth(file, 0)
    }

    pub(crate) fn open_at_depth(file: Box<dyn ImageFile>, depth: usize) -> Result<Self> {
        Self::open_with(file, depth, None)
    }

    /// Opens an image whose backing file is already open as `backing` (found at `path`, in
    /// `format`), so the backing chain is not opened again.
    pub fn open_over_backing(
        file: Box<dyn ImageFile>,
        backing: Box<dyn BlockDevice>,
        path: &Path,
        format: crate::Format,
    ) -> Result<Self> {
        Self::open_with(file, 0, Some((backing, path, format)))
    }

    fn open_with(
        mut file: Box<dyn ImageFile>,
        depth: usize,
        given_backing: Option<(Box<dyn BlockDevice>, &Path, crate::Format)>,
    ) -> Result<Self> {
        let path = file.path().to_path_buf();
        let header = Header::read(&mut *file)?;
        if header.compression_type == CompressionType::Zstd {
            return Err(Error::unsupported(
                &path,
                "qcow2 header",
                "compressed clusters use zstd (compression_type 1), which this reader does not decode; convert the image with compression_type=zlib",
            ));
        }
        let cluster_size = header.cluster_size();
        let layout = L2Layout {
            cluster_bits: header.cluster_bits,
            extended: header.has_extended_l2(),
            zero_flag: header.version >= 3,
        };
        let guest_clusters = header.size.div_ceil(cluster_size);
        let needed_l1 = guest_clusters.div_ceil(layout.entries_per_table());
        if u64::from(header.l1_size) < needed_l1 {
            return Err(Error::corrupt(
                &path,
                "qcow2 L1 table",
                format!(
                    "l1_size is {}, but a {}-byte disk needs {needed_l1} entries",
                    header.l1_size, header.size
                ),
            ));
        }
        if header.l1_table_offset % cluster_size != 0 {
            return Err(Error::corrupt(
                &path,
                "qcow2 L1 table",
                format!(
                    "its offset {} is not cluster-aligned",
                    header.l1_table_offset
                ),
            ));
        }
        // Checked against qemu's limit and the file before it is allocated: an L1 table lies
        // within the file, and a sparse file can claim any length.
        let l1_length = needed_l1 * 8;
        if l1_length > MAX_L1_BYTES {
            return Err(Error::corrupt(
                &path,
                "qcow2 L1 table",
                format!(
                    "a {}-byte disk needs {l1_length} bytes of L1 table, more than qemu's limit of {MAX_L1_BYTES} bytes",
                    header.size
                ),
            ));
        }
        if l1_length > file.len() {
            return Err(Error::corrupt(
                &path,
                "qcow2 L1 table",
                format!(
                    "a {}-byte disk needs {l1_length} bytes of L1 table, more than the file holds ({} bytes)",
                    header.size,
                    file.len()
                ),
            ));
        }
        let l1_bytes = read_structure(
            &mut *file,
            header.l1_table_offset,
            l1_length as usize,
            "qcow2 L1 table",
        )?;
        let l1 = l1_bytes
            .chunks_exact(8)
            .enumerate()
            .map(|(index, raw)| {
                let raw = u64::from_be_bytes(raw.try_into().unwrap_or_default());
                L1Entry::parse(&path, index, raw, cluster_size)
            })
            .collect::<Result<Vec<_>>>()?;
        let refcounts = Refcounts::read(
            &mut *file,
            header.refcount_table_offset,
            header.refcount_table_clusters,
            header.cluster_bits,
            header.refcount_order,
        )?;
        let backing_name = header.backing_file_name(&mut *file)?;
        let mut image = Qcow2 {
            file,
            header,
            layout,
            l1,
            refcounts,
            backing: None,
            backing_link: None,
            l2_cache: HashMap::new(),
            autoclear_cleared: false,
            metadata_map: None,
            appended: HashMap::new(),
        };
        if image.header.is_dirty() {
            image.check_dirty()?;
        }
        match (backing_name, given_backing) {
            (Some(name), Some((device, found, format))) => {
                image.backing = Some(device);
                image.backing_link = Some(BackingLink {
                    recorded: name,
                    path: found.to_path_buf(),
                    format,
                });
            }
            (None, Some(_)) => {
                return Err(Error::corrupt(
                    &path,
                    "qcow2 header",
                    "the image was opened over a backing file but names none",
                ))
            }
            (name, None) => image.open_backing(&path, name, depth)?,
        }
        Ok(image)
    }

    fn open_backing(&mut self, path: &Path, name: Option<String>, depth: usize) -> Result<()> {
        if let Some(name) = name {
            let (device, link) =
                backing::open(path, &name, self.header.backing_format.as_deref(), depth)?;
            self.backing = Some(device);
            self.backing_link = Some(link);
        }
        Ok(())
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The backing file, as the image names it and as it was found.
    pub fn backing_link(&self) -> Option<&BackingLink> {
        self.backing_link.as_ref()
    }

    /// The internal snapshots, read from the snapshot table.
    pub fn snapshots(&mut self) -> Result<Vec<snapshots::Snapshot>> {
        snapshots::read_table(&mut *self.file, &self.header).map(|(list, _)| list)
    }

    fn cluster_size(&self) -> u64 {
        self.header.cluster_size()
    }

    /// An image left dirty with lazy refcounts may count its clusters wrongly; it is used only
    /// when counting every reference gives the refcounts it records.
    fn check_dirty(&mut self) -> Result<()> {
        let reason = match check::count_references(self) {
            Ok(references) => self.compare_refcounts(&references)?,
            Err(error) => Some(error.to_string()),
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Error::unsupported(
                self.file.path(),
                "qcow2 header",
                format!(
                    "the image is dirty{} and its refcounts are not consistent ({reason}); qemu-img check -r all repairs them",
                    if self.header.has_lazy_refcounts() { " (lazy refcounts)" } else { "" }
                ),
            )),
        }
    }

    /// The first host cluster whose recorded refcount differs from `references`, if any.
    fn compare_refcounts(&mut self, references: &HashMap<u64, u64>) -> Result<Option<String>> {
        let clusters = self.file.len().div_ceil(self.cluster_size());
        for cluster in 0..clusters {
            let counted = references.get(&cluster).copied().unwrap_or(0);
            let recorded = self.refcounts.get(&mut *self.file, cluster)?;
            if counted != recorded {
                return Ok(Some(format!(
                    "host cluster {cluster} has {counted} references and a refcount of {recorded}"
                )));
            }
        }
        Ok(None)
    }

    fn l2_table(&mut self, offset: u64) -> Result<&mut Vec<u8>> {
        if !self.l2_cache.contains_key(&offset) {
            if self.l2_cache.len() * self.cluster_size() as usize >= L2_CACHE_BYTES {
                self.l2_cache.clear();
            }
            let cluster_size = self.cluster_size() as usize;
            let table = read_structure(&mut *self.file, offset, cluster_size, "qcow2 L2 table")?;
            self.l2_cache.insert(offset, table);
        }
        Ok(self.l2_cache.entry(offset).or_default())
    }

    /// Where guest cluster `guest_cluster`'s L2 entry is: its L1 index and index in the table.
    fn l2_position(&self, guest_cluster: u64) -> (usize, usize) {
        let per_table = self.layout.entries_per_table();
        (
            (guest_cluster / per_table) as usize,
            (guest_cluster % per_table) as usize,
        )
    }

    /// The raw L2 entry and bitmap of a guest cluster (zeros when it has no L2 table).
    fn l2_entry(&mut self, guest_cluster: u64) -> Result<(u64, u64)> {
        let (l1_index, index) = self.l2_position(guest_cluster);
        let Some(l1) = self.l1.get(l1_index).copied() else {
            return Ok((0, 0));
        };
        if l1.l2_offset == 0 {
            return Ok((0, 0));
        }
        let extended = self.layout.extended;
        let at = index * self.layout.entry_size() as usize;
        let table = self.l2_table(l1.l2_offset)?;
        let word = |at: usize| u64::from_be_bytes(crate::bytes::array(table, at));
        Ok((word(at), if extended { word(at + 8) } else { 0 }))
    }

    fn mapping(&mut self, guest_cluster: u64) -> Result<Mapping> {
        let (raw, bitmap) = self.l2_entry(guest_cluster)?;
        self.layout
            .parse(self.file.path(), guest_cluster, raw, bitmap)
    }

    /// Reads host bytes a cluster mapping points to, refusing a mapping past the file's end.
    fn read_host(&mut self, guest_cluster: u64, host: u64, out: &mut [u8]) -> Result<()> {
        let fits = host
            .checked_add(out.len() as u64)
            .is_some_and(|end| end <= self.file.len());
        if !fits {
            return Err(Error::corrupt(
                self.file.path(),
                "qcow2 L2 table",
                format!(
                    "guest cluster {guest_cluster} maps to host offset {host}, past the end of the file ({} bytes)",
                    self.file.len()
                ),
            ));
        }
        self.file.read_at(host, out)
    }

    /// What the backing chain (or nothing: zeros) shows at `offset`. A backing file shorter
    /// than this image reads as zeros past its end, as qemu has it.
    fn read_backing(&mut self, offset: u64, out: &mut [u8]) -> Result<()> {
        out.fill(0);
        if let Some(backing) = &mut self.backing {
            let available = backing.len().saturating_sub(offset).min(out.len() as u64) as usize;
            if available > 0 {
                backing.read_at(offset, &mut out[..available])?;
            }
        }
        Ok(())
    }

    fn read_compressed(&mut self, guest_cluster: u64, host: u64, length: u64) -> Result<Vec<u8>> {
        let length = length.min(self.file.len().saturating_sub(host));
        let stored = read_structure(
            &mut *self.file,
            host,
            length as usize,
            "qcow2 compressed cluster",
        )?;
        compressed::inflate_cluster(
            self.file.path(),
            guest_cluster,
            &stored,
            self.cluster_size() as usize,
        )
    }

    /// Reads `out.len()` bytes of one guest cluster, starting `within` bytes into it.
    fn read_in_cluster(&mut self, guest_cluster: u64, within: u64, out: &mut [u8]) -> Result<()> {
        let cluster_start = guest_cluster * self.cluster_size();
        match self.mapping(guest_cluster)? {
            Mapping::Unallocated => self.read_backing(cluster_start + within, out),
            Mapping::Zero { .. } => {
                out.fill(0);
                Ok(())
            }
            Mapping::Compressed { host, length } => {
                let cluster = self.read_compressed(guest_cluster, host, length)?;
                out.copy_from_slice(&cluster[within as usize..within as usize + out.len()]);
                Ok(())
            }
            Mapping::Normal { host, bitmap, .. } => {
                if bitmap as u32 == ALL_SUBCLUSTERS {
                    return self.read_host(guest_cluster, host + within, out);
                }
                let subcluster_size = self.cluster_size() / 32;
                let mut done = 0usize;
                while done < out.len() {
                    let position = within + done as u64;
                    let subcluster = position / subcluster_size;
                    let piece = ((subcluster + 1) * subcluster_size - position)
                        .min((out.len() - done) as u64) as usize;
                    let run = &mut out[done..done + piece];
                    if bitmap & (1 << subcluster) != 0 {
                        self.read_host(guest_cluster, host + position, run)?;
                    } else if bitmap & (1 << (32 + subcluster)) != 0 {
                        run.fill(0);
                    } else {
                        self.read_backing(cluster_start + position, run)?;
                    }
                    done += piece;
                }
                Ok(())
            }
        }
    }

    /// Splits `offset..offset+len` into (guest cluster, offset within it, length) pieces.
    fn pieces(&self, offset: u64, len: usize) -> Vec<(u64, u64, usize)> {
        let cluster_size = self.cluster_size();
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < len {
            let position = offset + done as u64;
            let within = position % cluster_size;
            let piece = (cluster_size - within).min((len - done) as u64) as usize;
            pieces.push((position / cluster_size, within, piece));
            done += piece;
        }
        pieces
    }

    fn clear_autoclear_bits(&mut self) -> Result<()> {
        if !self.autoclear_cleared && self.header.autoclear_features != 0 {
            self.file
                .write_at(header::AUTOCLEAR_FEATURES_OFFSET, &0u64.to_be_bytes())?;
            self.file.order_writes()?;
            self.header.autoclear_features = 0;
        }
        self.autoclear_cleared = true;
        Ok(())
    }

    /// A new host cluster holding `content`, counted once: written, then its refcount.
    fn append_cluster(&mut self, content: &[u8]) -> Result<u64> {
        let host = self.refcounts.reserve_cluster(&mut *self.file)?;
        self.file.write_at(host, content)?;
        self.file.order_writes()?;
        self.refcounts
            .set(&mut *self.file, host >> self.header.cluster_bits, 1)?;
        self.file.order_writes()?;
        Ok(host)
    }

    fn write_l1_entry(&mut self, l1_index: usize, entry: L1Entry) -> Result<()> {
        let at = self.header.l1_table_offset + 8 * l1_index as u64;
        self.file.write_at(at, &entry.to_raw().to_be_bytes())?;
        self.file.order_writes()?;
        self.l1[l1_index] = entry;
        Ok(())
    }

    /// Makes the L2 table of `l1_index` one this image may write in place: a new empty one
    /// where there is none, a copy where it is shared with a snapshot.
    fn writable_l2_table(&mut self, l1_index: usize) -> Result<u64> {
        let entry = self.l1[l1_index];
        if entry.l2_offset != 0 && entry.copied {
            return Ok(entry.l2_offset);
        }
        let cluster_bits = self.header.cluster_bits;
        let mut table = if entry.l2_offset == 0 {
            vec![0u8; self.cluster_size() as usize]
        } else {
            self.l2_table(entry.l2_offset)?.clone()
        };
        if entry.l2_offset != 0 {
            // A data cluster's refcount counts the L1 tables that reach it, so the copy adds
            // none; its entries keep COPIED clear, since the snapshot still maps them.
            let step = self.layout.entry_size() as usize;
            for at in (0..table.len()).step_by(step) {
                let raw = u64::from_be_bytes(crate::bytes::array(&table, at));
                table[at..at + 8].copy_from_slice(&(raw & !COPIED).to_be_bytes());
            }
        }
        let new_offset = self.append_cluster(&table)?;
        self.l2_cache.insert(new_offset, table);
        self.write_l1_entry(
            l1_index,
            L1Entry {
                l2_offset: new_offset,
                copied: true,
            },
        )?;
        if entry.l2_offset != 0 {
            self.refcounts
                .add(&mut *self.file, entry.l2_offset >> cluster_bits, -1)?;
            self.file.order_writes()?;
        }
        Ok(new_offset)
    }

    /// The host clusters a mapping holds a reference to.
    fn host_clusters(&self, mapping: Mapping) -> Vec<u64> {
        let bits = self.header.cluster_bits;
        match mapping {
            Mapping::Unallocated => Vec::new(),
            Mapping::Zero { host, .. } => host.map(|host| host >> bits).into_iter().collect(),
            Mapping::Normal { host: 0, .. } => Vec::new(),
            Mapping::Normal { host, .. } => vec![host >> bits],
            Mapping::Compressed { host, length } => {
                let last = (host + length.max(1) - 1) >> bits;
                ((host >> bits)..=last).collect()
            }
        }
    }

    fn write_l2_entry(
        &mut self,
        l2_offset: u64,
        index: usize,
        raw: u64,
        bitmap: u64,
    ) -> Result<()> {
        let mut bytes = raw.to_be_bytes().to_vec();
        if self.layout.extended {
            bytes.extend_from_slice(&bitmap.to_be_bytes());
        }
        let at = index * self.layout.entry_size() as usize;
        self.file.write_at(l2_offset + at as u64, &bytes)?;
        self.file.order_writes()?;
        let table = self.l2_table(l2_offset)?;
        table[at..at + bytes.len()].copy_from_slice(&bytes);
        Ok(())
    }

    /// Every host cluster the image's structures take, in the active image and every snapshot.
    fn build_metadata_map(&mut self) -> Result<MetadataMap> {
        let cluster_size = self.cluster_size();
        let header = self.header.clone();
        let mut map = MetadataMap::new(header.cluster_bits, self.file.len());
        map.add(0, 1, "header");
        map.add(
            header.backing_file_offset,
            u64::from(header.backing_file_size),
            "backing file name",
        );
        map.add(
            header.l1_table_offset,
            u64::from(header.l1_size) * 8,
            "active L1 table",
        );
        for l2_offset in self.l1_offsets() {
            map.add(l2_offset, 1, "L2 table");
        }
        let (table_offset, table_length) = self.refcounts.table_extent();
        map.add(table_offset, table_length, "refcount table");
        for &block in self.refcounts.table() {
            map.add(block, 1, "refcount block");
        }
        let (snapshots, snapshot_bytes) = snapshots::read_table(&mut *self.file, &header)?;
        map.add(header.snapshots_offset, snapshot_bytes, "snapshot table");
        for snapshot in &snapshots {
            map.add(
                snapshot.l1_table_offset,
                u64::from(snapshot.l1_size) * 8,
                "snapshot L1 table",
            );
            for l2_offset in snapshots::read_l1(&mut *self.file, snapshot, cluster_size)? {
                map.add(l2_offset, 1, "snapshot L2 table");
            }
        }
        Ok(map.finish())
    }

    /// Where a write of `length` bytes, `within` bytes into guest cluster `guest_cluster`
    /// (mapped as `mapping`), lands in place: the host cluster and the bytes written in it
    /// (offset and length). None when it is copied into a new cluster instead: the L1 and L2
    /// entries must both be COPIED (a table without it is copied first, clearing the flag).
    fn in_place_target(
        &self,
        guest_cluster: u64,
        mapping: Mapping,
        within: u64,
        length: u64,
    ) -> Option<(u64, u64, u64)> {
        let l1 = self.l1[self.l2_position(guest_cluster).0];
        if !l1.copied || l1.l2_offset == 0 {
            return None;
        }
        match mapping {
            Mapping::Normal {
                host,
                copied: true,
                bitmap,
            } if host != 0 => Some(if bitmap as u32 == ALL_SUBCLUSTERS {
                (host, host + within, length)
            } else {
                // Subclusters not yet allocated are filled with the whole cluster.
                (host, host, self.cluster_size())
            }),
            Mapping::Zero {
                host: Some(host),
                copied: true,
            } if host != 0 => Some((host, host, self.cluster_size())),
            _ => None,
        }
    }

    /// Refuses an in-place write of `length` bytes at `at` into host cluster `host`, where
    /// guest cluster `guest_cluster`'s COPIED entry points, unless that cluster lies within the
    /// file, holds none of the image's structures and has a refcount of exactly 1.
    fn check_in_place(
        &mut self,
        guest_cluster: u64,
        host: u64,
        at: u64,
        length: u64,
    ) -> Result<()> {
        let cluster = host >> self.header.cluster_bits;
        if self.appended.get(&cluster) == Some(&guest_cluster) {
            return Ok(());
        }
        self.gather_metadata_map()?;
        let (file_len, structure) = match &self.metadata_map {
            Some(map) => (map.file_len(), map.structure_at(cluster)),
            None => (0, None),
        };
        let path = self.file.path().to_path_buf();
        let copied = format!(
            "guest cluster {guest_cluster} is marked COPIED (its own, written in place) at host offset {host}"
        );
        // The file's last cluster may end part-way (qemu does not fill unallocated subclusters
        // of an extended L2 image): a write may fill it, never go past it.
        let cluster_size = self.cluster_size();
        let last_cluster_end = file_len.div_ceil(cluster_size).saturating_mul(cluster_size);
        if at.saturating_add(length) > last_cluster_end {
            return Err(Error::corrupt(
                &path,
                "qcow2 L2 table",
                format!(
                    "{copied}, but {length} bytes written at {at} would reach past the end of the file ({file_len} bytes, its last cluster filled)"
                ),
            ));
        }
        if let Some(structure) = structure {
            return Err(Error::corrupt(
                &path,
                "qcow2 L2 table",
                format!("{copied}, which holds the image's {structure}, not guest data"),
            ));
        }
        let refcount = self.refcounts.get(&mut *self.file, cluster)?;
        if refcount != 1 {
            return Err(Error::corrupt(
                &path,
                "qcow2 L2 table",
                format!(
                    "{copied}, but host cluster {cluster} has a refcount of {refcount}; expected 1"
                ),
            ));
        }
        Ok(())
    }

    /// Gathers the metadata map once, before this open's first write: clusters it appends
    /// later are then past the length it records, and none can pass for the image's own.
    fn gather_metadata_map(&mut self) -> Result<()> {
        if self.metadata_map.is_none() {
            self.metadata_map = Some(self.build_metadata_map()?);
        }
        Ok(())
    }

    /// Checks every in-place write of `offset..offset+len` before any byte of it is written.
    fn check_in_place_writes(&mut self, offset: u64, len: usize) -> Result<()> {
        self.gather_metadata_map()?;
        for (guest_cluster, within, piece) in self.pieces(offset, len) {
            let mapping = self.mapping(guest_cluster)?;
            if let Some((host, at, length)) =
                self.in_place_target(guest_cluster, mapping, within, piece as u64)
            {
                self.check_in_place(guest_cluster, host, at, length)?;
            }
        }
        Ok(())
    }

    fn write_in_cluster(&mut self, guest_cluster: u64, within: u64, data: &[u8]) -> Result<()> {
        let cluster_size = self.cluster_size();
        let mapping = self.mapping(guest_cluster)?;
        let (l1_index, index) = self.l2_position(guest_cluster);
        let in_place = self.in_place_target(guest_cluster, mapping, within, data.len() as u64);
        if let Some((host, at, length)) = in_place {
            // Checked again here: an earlier piece of the same write may have changed the
            // tables since the check of the whole write.
            self.check_in_place(guest_cluster, host, at, length)?;
            if matches!(mapping, Mapping::Normal { bitmap, .. } if bitmap as u32 == ALL_SUBCLUSTERS)
            {
                return self.file.write_at(at, data);
            }
        }
        // Whatever the guest sees in this cluster now, with the write applied.
        let mut content = vec![0u8; cluster_size as usize];
        self.read_in_cluster(guest_cluster, 0, &mut content)?;
        content[within as usize..within as usize + data.len()].copy_from_slice(data);
        let l2_offset = self.writable_l2_table(l1_index)?;
        let mapping = self.mapping(guest_cluster)?;
        let (raw, bitmap) = match mapping {
            // A cluster of this image's own: filled whole, then marked wholly allocated.
            Mapping::Normal {
                host, copied: true, ..
            }
            | Mapping::Zero {
                host: Some(host),
                copied: true,
            } if host != 0 => {
                self.file.write_at(host, &content)?;
                self.file.order_writes()?;
                self.layout.allocated(host)
            }
            _ => {
                let host = self.append_cluster(&content)?;
                self.appended
                    .insert(host >> self.header.cluster_bits, guest_cluster);
                self.layout.allocated(host)
            }
        };
        self.write_l2_entry(l2_offset, index, raw, bitmap)?;
        let new_host = raw & !COPIED;
        for cluster in self.host_clusters(mapping) {
            if cluster != new_host >> self.header.cluster_bits {
                self.refcounts.add(&mut *self.file, cluster, -1)?;
            }
        }
        Ok(())
    }

    /// The L1 table's entries (for the reference count).
    pub(crate) fn l1_offsets(&self) -> Vec<u64> {
        self.l1.iter().map(|entry| entry.l2_offset).collect()
    }
}

impl BlockDevice for Qcow2 {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn len(&self) -> u64 {
        self.header.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.file.path(), offset, buf.len(), self.header.size)?;
        let mut done = 0usize;
        for (guest_cluster, within, piece) in self.pieces(offset, buf.len()) {
            self.read_in_cluster(guest_cluster, within, &mut buf[done..done + piece])?;
            done += piece;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_write(&*self.file, offset, buf.len(), self.header.size)?;
        self.check_in_place_writes(offset, buf.len())?;
        self.clear_autoclear_bits()?;
        let mut done = 0usize;
        for (guest_cluster, within, piece) in self.pieces(offset, buf.len()) {
            self.write_in_cluster(guest_cluster, within, &buf[done..done + piece])?;
            done += piece;
        }
        Ok(())
    }

    fn container_format(&self) -> Option<crate::Format> {
        Some(crate::Format::Qcow2)
    }

    fn backing_device(&self) -> Option<&dyn BlockDevice> {
        self.backing.as_deref()
    }

    fn flush(&mut self) -> Result<()> {
        self.file.sync()
    }
}
