//! Opens the input as a disk image (raw, VHD, VHDX or qcow2, told apart by content as `reseal`
//! does; the input describes the file sparsely, see `reseal_fuzz::sparse_file`): headers, region
//! table, log replay over the file in memory, metadata, BAT, footer, dynamic header, sector
//! bitmaps, qcow2 header extensions, L1/L2 and refcount tables, compressed clusters; then reads
//! the partition table, the partitions' edges and spread parts of the disk.
//! Typed errors only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_disk::{partition, BlockDevice, PartitionWindow};
use reseal_fuzz::sparse_file::SparseFile;

fuzz_target!(|data: &[u8]| {
    let Some((kind, rest)) = reseal_fuzz::choose(data, 4) else {
        return;
    };
    // The extension matters only when the content is neither: a damaged .vhd is not raw.
    let file = SparseFile::parse(rest, ["img", "vhd", "vhdx", "qcow2"][kind]);
    let Ok(mut device) = reseal_disk::open_file(Box::new(file)) else {
        return;
    };
    let len = device.len();
    let mut sector = [0u8; 4096];
    for step in 0..16u64 {
        let offset = (len / 16 * step) & !4095;
        let _ = device.read_at(offset, &mut sector);
    }
    let Ok(Some(table)) = partition::read_partition_table(&mut *device) else {
        return;
    };
    for found in table.partitions.iter().take(8) {
        if let Ok(mut window) = PartitionWindow::new(&mut *device, found.start, found.size) {
            let mut edge = [0u8; 512];
            let _ = window.read_at(0, &mut edge);
            let _ = window.read_at(found.size.saturating_sub(512), &mut edge);
        }
    }
});
