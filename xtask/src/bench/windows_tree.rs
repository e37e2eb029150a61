//! The Windows-shaped tree the WIM and disk benches work on, captured once into an LZX WIM.
//!
//! It is the sample image `fixtures/sample/` (a complete offline Windows 10 tree that reseal
//! accepts) with two additions that give it the size of a real one:
//!
//! - a big SOFTWARE hive: the hive bench's generated SOFTWARE-shaped hive with every key and
//!   value of the sample's SOFTWARE merged in, so the providers and the validation find what
//!   they read;
//! - filler files in a Windows-like layout (WinSxS components, System32, the driver store, MUI
//!   files, Program Files): mostly small files, some of several MiB, whose contents are text
//!   (manifests, INFs: compress well), machine code (compresses somewhat) or already packed data
//!   (does not compress), mixed by file type. Every file starts with its own header, so no two
//!   are the same blob.
//!
//! Sizes (environment variables): `BENCH_WIM_FILES` filler files (default 55,000),
//! `BENCH_WIM_TREE_MIB` their total size in MiB (default 4,800, about 3 GiB once compressed),
//! `BENCH_WIM_HIVE_KEYS` keys of the generated SOFTWARE hive (default 330,000, about 80 MiB).

use std::path::{Path, PathBuf};
use std::process::Command;

use reseal_hive::Hive;

/// How big the generated tree is.
#[derive(Clone, Copy, Debug)]
pub struct TreeSize {
    pub files: u64,
    pub filler_mib: u64,
    pub hive_keys: u64,
}

impl TreeSize {
    pub fn from_env() -> Result<TreeSize, String> {
        Ok(TreeSize {
            files: super::env_number("BENCH_WIM_FILES", 55_000)?,
            filler_mib: super::env_number("BENCH_WIM_TREE_MIB", 4_800)?,
            hive_keys: super::env_number("BENCH_WIM_HIVE_KEYS", 330_000)?,
        })
    }

    /// The cache folder's name: a different size is a different tree.
    fn name(&self) -> String {
        format!(
            "windows-{}files-{}mib-{}keys",
            self.files, self.filler_mib, self.hive_keys
        )
    }
}

/// The image name the WIM gets (the sample's).
pub const IMAGE_NAME: &str = "Windows 10 Pro";

/// The LZX WIM of the generated tree, generated and captured when missing. The tree itself is
/// removed once captured: every bench starts from the WIM.
pub fn tree_wim(work: &Path, size: TreeSize) -> Result<PathBuf, String> {
    let dir = work.join(size.name());
    let wim = dir.join("tree.wim");
    if wim.exists() {
        return Ok(wim);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Named after this process, so that two benches started together cannot clobber each other.
    let mut scratch = crate::Scratch::default();
    let tree = scratch.add(dir.join(format!("tree-{}", std::process::id())));
    crate::remove_if_present(&tree)?;
    eprintln!(
        "bench: generating a Windows tree in {} (once; the WIM is kept)",
        tree.display()
    );
    let sample = crate::workspace_root().join("fixtures").join("sample");
    crate::copy_tree(&sample, &tree)?;

    let config = Path::new("Windows").join("System32").join("config");
    let generated = super::hive::generated_hive(work, size.hive_keys)?;
    let software = merge_keys(&generated, &sample.join(&config).join("SOFTWARE"))?;
    let software_path = tree.join(&config).join("SOFTWARE");
    std::fs::write(&software_path, &software)
        .map_err(|e| format!("{}: {e}", software_path.display()))?;

    let filler_bytes = write_fillers(&tree, size)?;
    eprintln!(
        "bench: tree holds the sample, a {} SOFTWARE hive and {} filler files of {}",
        super::mib(software.len() as f64),
        size.files,
        super::mib(filler_bytes as f64)
    );

    let partial = scratch.add(dir.join(format!("tree.wim.partial-{}", std::process::id())));
    crate::remove_if_present(&partial)?;
    super::run_to_stderr(
        Command::new("wimlib-imagex")
            .arg("capture")
            .arg(&tree)
            .arg(&partial)
            .arg(IMAGE_NAME)
            .arg("--compress=LZX"),
    )?;
    std::fs::rename(&partial, &wim).map_err(|e| format!("{}: {e}", wim.display()))?;
    crate::remove_if_present(&tree)?;
    Ok(wim)
}

/// The generated hive with every key and value of `sample` added (values of the sample win).
fn merge_keys(generated: &Path, sample: &Path) -> Result<Vec<u8>, String> {
    let (sample_hive, _) = Hive::open_file(sample).map_err(named(sample))?;
    let bytes = std::fs::read(generated).map_err(|e| format!("{}: {e}", generated.display()))?;
    let mut hive = Hive::from_bytes(bytes).map_err(named(generated))?;
    let mut pending = vec![(String::new(), sample_hive.root().map_err(named(sample))?)];
    while let Some((path, key)) = pending.pop() {
        if !path.is_empty() {
            hive.create_key(&path).map_err(named(generated))?;
        }
        for value in key.values().map_err(named(sample))? {
            let name = value.name().map_err(named(sample))?;
            let value_type = value.value_type().map_err(named(sample))?;
            let data = value.data().map_err(named(sample))?;
            hive.set_value(&path, &name, value_type, &data)
                .map_err(named(generated))?;
        }
        for subkey in key.subkeys().map_err(named(sample))? {
            let name = subkey.name().map_err(named(sample))?;
            let subpath = if path.is_empty() {
                name
            } else {
                format!("{path}\\{name}")
            };
            pending.push((subpath, subkey));
        }
    }
    Ok(hive.into_committed())
}

/// Maps a hive error to a message naming the file.
fn named(path: &Path) -> impl Fn(reseal_hive::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// SplitMix64: a small deterministic generator, so every run builds the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Log-uniform in `[low, high)`: as many files between 1 and 2 KiB as between 1 and 2 MiB.
    fn log_uniform(&mut self, low: u64, high: u64) -> u64 {
        let fraction = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let (low, high) = (low as f64, high as f64);
        (low * (high / low).powf(fraction)) as u64
    }
}

/// How file contents compress, by file type.
#[derive(Clone, Copy)]
enum Contents {
    /// Manifests, INFs, XML: text.
    Text,
    /// Executables and libraries: machine code with a fifth of packed resources.
    Binary,
    /// Catalogs, images, cabinets: already compressed.
    Packed,
}

/// File extensions with their contents, weighted by how often they occur.
const EXTENSIONS: &[(&str, Contents, u64)] = &[
    ("dll", Contents::Binary, 45),
    ("exe", Contents::Binary, 8),
    ("sys", Contents::Binary, 6),
    ("mui", Contents::Binary, 8),
    ("manifest", Contents::Text, 10),
    ("inf", Contents::Text, 3),
    ("xml", Contents::Text, 4),
    ("cat", Contents::Packed, 6),
    ("png", Contents::Packed, 6),
    ("cab", Contents::Packed, 4),
];

/// Bytes of each kind of contents the files are cut from (each file takes pieces at random
/// places; WIM compresses every 32 KiB chunk on its own, so the reuse does not help it).
const POOL_BYTES: usize = 4 << 20;

/// The three pools of contents, filled once.
struct Pools {
    text: Vec<u8>,
    code: Vec<u8>,
    packed: Vec<u8>,
}

impl Pools {
    fn new(rng: &mut Rng) -> Pools {
        let words: Vec<String> = (0..400).map(|_| word(rng)).collect();
        let mut text = Vec::with_capacity(POOL_BYTES + 256);
        while text.len() < POOL_BYTES {
            let line = match rng.below(3) {
                0 => format!(
                    "  <file name=\"{}.{}\" hash=\"{:016x}\" size=\"{}\" />\r\n",
                    words[rng.below(400) as usize],
                    EXTENSIONS[rng.below(EXTENSIONS.len() as u64) as usize].0,
                    rng.next(),
                    rng.below(1 << 20)
                ),
                1 => format!(
                    "  <assemblyIdentity name=\"Microsoft-Windows-{}-{}\" version=\"10.0.19041.{}\" \
                     processorArchitecture=\"amd64\" publicKeyToken=\"31bf3856ad364e35\" />\r\n",
                    words[rng.below(400) as usize],
                    words[rng.below(400) as usize],
                    rng.below(4000)
                ),
                _ => {
                    let sentence: Vec<&str> = (0..8 + rng.below(8))
                        .map(|_| words[rng.below(400) as usize].as_str())
                        .collect();
                    format!("; {}\r\n", sentence.join(" "))
                }
            };
            text.extend_from_slice(line.as_bytes());
        }
        // Machine code: many zero and 0xFF bytes, a small set of frequent opcodes, short
        // repeated sequences, and the rest random.
        const OPCODES: &[u8] = &[
            0x48, 0x89, 0x8B, 0xE8, 0xC3, 0x0F, 0x85, 0x84, 0x74, 0x75, 0x33, 0xC0, 0x4C, 0x8D,
            0x83, 0xFF,
        ];
        let mut code = Vec::with_capacity(POOL_BYTES);
        while code.len() < POOL_BYTES {
            let r = rng.next();
            match r % 16 {
                0..=4 => code.push(0),
                5 => code.push(0xFF),
                6..=9 => code.push(OPCODES[(r >> 8) as usize % OPCODES.len()]),
                10 if code.len() > 64 => {
                    let back = 8 + (r >> 8) as usize % 56;
                    let start = code.len() - back;
                    for i in 0..4 + (r >> 16) as usize % 8 {
                        code.push(code[start + i]);
                    }
                }
                _ => code.push((r >> 24) as u8),
            }
        }
        let mut packed = Vec::with_capacity(POOL_BYTES);
        while packed.len() < POOL_BYTES {
            packed.extend_from_slice(&rng.next().to_le_bytes());
        }
        Pools { text, code, packed }
    }

    /// A random piece of `len` bytes of the pool for `contents`.
    fn piece(&self, contents: Contents, len: usize, rng: &mut Rng) -> &[u8] {
        let pool = match contents {
            Contents::Text => &self.text,
            Contents::Binary if rng.below(5) == 0 => &self.packed,
            Contents::Binary => &self.code,
            Contents::Packed => &self.packed,
        };
        let start = rng.below((pool.len() - len) as u64) as usize;
        &pool[start..start + len]
    }
}

/// A lowercase pseudo-word of two to four syllables.
fn word(rng: &mut Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "win", "dows", "net", "shell", "core", "sys", "com", "ui", "data", "host", "svc", "print",
        "audio", "media", "font", "setup", "driver", "crypt", "user", "base", "app", "x", "task",
        "web", "sec", "log", "boot", "disk", "pnp", "wmi",
    ];
    (0..2 + rng.below(3))
        .map(|_| SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize])
        .collect()
}

/// The file sizes before scaling: 66.8% below 16 KiB, 30% up to 192 KiB, 3% up to 4 MiB and
/// 0.2% up to 24 MiB, each log-uniform (about the shape of a Windows installation's files).
fn raw_size(rng: &mut Rng) -> u64 {
    match rng.below(1000) {
        0..=667 => rng.log_uniform(256, 16 << 10),
        668..=967 => rng.log_uniform(16 << 10, 192 << 10),
        968..=997 => rng.log_uniform(256 << 10, 4 << 20),
        _ => rng.log_uniform(4 << 20, 24 << 20),
    }
}

/// The folder of filler file `index`: WinSxS components (55%), System32 (15%), the driver store
/// (10%), System32\en-US (8%) and Program Files (12%), a dozen or so files per folder.
fn folder(index: u64) -> String {
    let mut rng = Rng((index / 12).wrapping_mul(0x51_7CC1_B727_220A));
    let hex = rng.next();
    match index % 100 {
        0..=54 => format!(
            "Windows\\WinSxS\\amd64_microsoft-windows-{}-{}_31bf3856ad364e35_10.0.19041.{}_none_{hex:016x}",
            word(&mut rng),
            word(&mut rng),
            rng.below(4000)
        ),
        55..=69 => "Windows\\System32".to_string(),
        70..=79 => format!(
            "Windows\\System32\\DriverStore\\FileRepository\\{}.inf_amd64_{hex:016x}",
            word(&mut rng)
        ),
        80..=87 => "Windows\\System32\\en-US".to_string(),
        _ => format!(
            "Program Files\\{} {}\\{}",
            capitalized(&word(&mut rng)),
            capitalized(&word(&mut rng)),
            ["bin", "lib", "resources", "plugins"][rng.below(4) as usize]
        ),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Writes the filler files into `tree` and returns their total size.
fn write_fillers(tree: &Path, size: TreeSize) -> Result<u64, String> {
    let mut rng = Rng(0x5EA1_5EA1);
    let pools = Pools::new(&mut rng);
    let raw: Vec<u64> = (0..size.files).map(|_| raw_size(&mut rng)).collect();
    let scale = (size.filler_mib << 20) as f64 / raw.iter().sum::<u64>().max(1) as f64;
    let weight_total: u64 = EXTENSIONS.iter().map(|(_, _, weight)| weight).sum();
    let mut written = 0u64;
    let mut last_folder = PathBuf::new();
    let mut contents = Vec::new();
    for (index, raw_len) in raw.iter().enumerate() {
        let index = index as u64;
        let mut pick = rng.below(weight_total);
        let &(extension, kind, _) = EXTENSIONS
            .iter()
            .find(|(_, _, weight)| {
                let hit = pick < *weight;
                pick = pick.saturating_sub(*weight);
                hit
            })
            .unwrap_or(&EXTENSIONS[0]);
        let folder = tree.join(folder(index).replace('\\', "/"));
        if folder != last_folder {
            std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            last_folder = folder.clone();
        }
        let name = format!("{}{index}.{extension}", word(&mut rng));
        let len = ((*raw_len as f64 * scale) as usize).max(64);
        contents.clear();
        contents
            .extend_from_slice(format!("reseal bench file {index:08} of {len} bytes\n").as_bytes());
        while contents.len() < len {
            let piece = (len - contents.len()).min(32 << 10);
            contents.extend_from_slice(pools.piece(kind, piece, &mut rng));
        }
        let path = folder.join(&name);
        std::fs::write(&path, &contents).map_err(|e| format!("{}: {e}", path.display()))?;
        written += len as u64;
    }
    Ok(written)
}
