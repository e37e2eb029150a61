//! Opens the input as a WIM file (written to a scratch file, as the reader works on files) and
//! reads every image: the header, blob table and XML, each image's metadata resource (security
//! data and dentry tree), and the contents of its files. Typed errors only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_wim::Wim;

/// Enough file reads per image to reach every blob of the seed images, few enough to stay fast.
const READ_BUDGET: usize = 64;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("reseal-fuzz-{}.wim", std::process::id()));
    std::fs::write(&path, data).expect("the scratch file is writable");
    let Ok(mut wim) = Wim::open(&path) else {
        return;
    };
    let _ = wim.images();
    for index in 1..=wim.image_count().min(4) {
        let Ok(metadata) = wim.load_image(index) else {
            continue;
        };
        let mut reads = 0;
        for (i, dentry) in metadata.dentries.iter().enumerate() {
            let _ = metadata.path_of(i);
            let _ = metadata.security_descriptor(i);
            let _ = metadata.hard_links(i);
            if let Some(stream) = &dentry.data {
                if reads < READ_BUDGET {
                    reads += 1;
                    let _ = wim.read_blob(&stream.hash);
                }
            }
        }
        let _ = metadata.counts(|hash| wim.blob_size(hash).unwrap_or(0));
        let _ = metadata.lookup(r"Windows\System32\config\SYSTEM");
    }
});
