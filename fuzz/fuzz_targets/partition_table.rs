//! Reads the input as a raw disk's partition table (MBR with its extended chain, or GPT with
//! its header and entries), then each partition's first sector. Typed errors only; a table that
//! reads must describe partitions within the disk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_disk::raw::RawDisk;
use reseal_disk::{partition, BlockDevice, PartitionWindow};
use reseal_fuzz::sparse_file::SparseFile;

fuzz_target!(|data: &[u8]| {
    let mut disk = RawDisk::new(Box::new(SparseFile::whole(data, "img")));
    let Ok(Some(table)) = partition::read_partition_table(&mut disk) else {
        return;
    };
    for found in &table.partitions {
        let mut window = PartitionWindow::new(&mut disk, found.start, found.size)
            .expect("a partition the table gives lies within the disk");
        let mut first = [0u8; 512];
        let _ = window.read_at(0, &mut first);
    }
});
