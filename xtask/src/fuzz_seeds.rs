//! The seed corpus of each fuzz target, written at run time from the sample image in
//! `fixtures/` and the real data in `../shared/fixtures/real` (never copied into the
//! repository). Under `CI=true` missing real data is an error, so CI never fuzzes from less.

use std::path::{Path, PathBuf};
use std::process::Command;

use reseal_hive::{reg_file, Hive};

/// Real hives small enough to fuzz quickly.
const SMALL_HIVES: [&str; 14] = [
    "hivex/special",
    "nt-hive/testhive",
    "yarp/BigDataHive",
    "yarp/UnicodeHive",
    "yarp/StringValuesHive",
    "yarp/ManySubkeysHive",
    "yarp/ExtendedASCIIHive",
    "yarp/BogusKeyNamesHive",
    "yarp/MultiSzHive",
    "yarp/NewDirtyHive1/NewDirtyHive",
    "yarp/OldDirtyHive/OldDirtyHive",
    "EricZimmerman/SAM",
    "EricZimmerman/SAM_DUPENAME",
    "EricZimmerman/SAMBadHBinHeader",
];

/// Hives with their transaction logs.
const DIRTY_HIVES: [(&str, &[&str]); 6] = [
    (
        "yarp/NewDirtyHive1/NewDirtyHive",
        &[
            "yarp/NewDirtyHive1/NewDirtyHive.LOG1",
            "yarp/NewDirtyHive1/NewDirtyHive.LOG2",
        ],
    ),
    (
        "yarp/NewDirtyHive1/NewDirtyHive",
        &["yarp/NewDirtyHive1/NewDirtyHive.LOG1"],
    ),
    (
        "yarp/NewDirtyHive1/NewDirtyHive",
        &["yarp/NewDirtyHive1/NewDirtyHive.LOG2"],
    ),
    (
        "yarp/OldDirtyHive/OldDirtyHive",
        &["yarp/OldDirtyHive/OldDirtyHive.LOG1"],
    ),
    (
        "regf-samples/3.1/SOFTWARE",
        &["regf-samples/3.1/SOFTWARE.LOG"],
    ),
    ("dfwinreg/NTUSER.DAT", &["dfwinreg/NTUSER.DAT.LOG"]),
];

/// The sample image's hives (with their logs beside them).
const SAMPLE_HIVES: [&str; 7] = [
    "Windows/System32/config/SYSTEM",
    "Windows/System32/config/SOFTWARE",
    "Windows/System32/config/SAM",
    "Windows/System32/config/SECURITY",
    "Windows/System32/config/DEFAULT",
    "Users/Default/NTUSER.DAT",
    "Users/Administrator/NTUSER.DAT",
];

/// Seeds larger than this slow every execution down more than their coverage is worth.
const MAX_SEED: usize = 1 << 20;

/// Writes `target`'s seeds into `corpus` (next to what earlier runs found); returns how many.
pub fn write(target: &str, root: &Path, corpus: &Path) -> Result<usize, String> {
    std::fs::create_dir_all(corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let mut seeds = Seeds {
        corpus,
        count: 0,
        sample: root.join("fixtures/sample"),
        real: real_dir(root)?,
        scratch: corpus.with_extension("scratch"),
    };
    match target {
        "hive_open_walk" => seeds.hives(|seeds, name, hive, _| seeds.add(name, hive)),
        "hive_edit_commit" => {
            let mut script_bytes = XorShift(1);
            seeds.hives(|seeds, name, hive, _| {
                for variant in 0..2 {
                    let len = 4 * (1 + script_bytes.below(11));
                    let mut seed = vec![len as u8];
                    seed.extend((0..len).map(|_| script_bytes.below(256) as u8));
                    seed.extend_from_slice(hive);
                    seeds.add(&format!("{name}.{variant}"), &seed)?;
                }
                Ok(())
            })
        }
        "hive_replay" => seeds.dirty_hives(),
        "reg_import" => seeds.hives(|seeds, name, hive, _| seeds.reg_export(name, hive)),
        "wim" => seeds.wims(|seeds, name, wim| seeds.add(name, wim)),
        "wim_parts" => seeds.wims(Seeds::wim_parts),
        "disk" => seeds.disks(),
        "partition_table" => seeds.partition_tables(),
        "evtx" => seeds.event_logs(),
        "answer_file" => seeds.answer_files(),
        "state_ini" => seeds.state_inis(),
        other => Err(format!("no seeds for fuzz target {other}")),
    }?;
    let _ = crate::remove_if_present(&seeds.scratch);
    Ok(seeds.count)
}

/// `shared/fixtures/real`, or `None` with a note (an error under `CI=true`).
fn real_dir(root: &Path) -> Result<Option<PathBuf>, String> {
    let shared = std::env::var_os("RESEAL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    let real = shared.join("fixtures/real");
    if real.is_dir() {
        return Ok(Some(real));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return Err(format!(
            "{} is missing (CI=true requires the real fixtures for the seed corpora)",
            real.display()
        ));
    }
    eprintln!(
        "fuzz: {} is missing: seeding from fixtures/ alone",
        real.display()
    );
    Ok(None)
}

/// A small deterministic generator, so the seeds are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

struct Seeds<'a> {
    corpus: &'a Path,
    count: usize,
    sample: PathBuf,
    real: Option<PathBuf>,
    /// Files a seed is made from with a system tool.
    scratch: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

impl Seeds<'_> {
    fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > MAX_SEED {
            return Ok(());
        }
        let path = self.corpus.join(name.replace(['/', '\\'], "_"));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        self.count += 1;
        Ok(())
    }

    /// The real file `relative`, or `None` when there is no real data.
    fn real(&self, relative: &str) -> Result<Option<Vec<u8>>, String> {
        self.real
            .as_ref()
            .map(|real| read(&real.join(relative)))
            .transpose()
    }

    /// Every real file below `relative` whose name ends in `extension`.
    fn real_files(&self, relative: &str, extension: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        if let Some(real) = &self.real {
            collect_files(&real.join(relative), extension, &mut found);
        }
        found.sort();
        found
    }

    /// Calls `each` with the name, bytes and path of the sample's hives and the small real ones.
    fn hives(
        &mut self,
        mut each: impl FnMut(&mut Self, &str, &[u8], &str) -> Result<(), String>,
    ) -> Result<(), String> {
        for relative in SAMPLE_HIVES {
            let hive = read(&self.sample.join(relative))?;
            each(self, &format!("sample_{relative}"), &hive, relative)?;
        }
        for relative in SMALL_HIVES {
            let real = format!("hives/{relative}");
            if let Some(hive) = self.real(&real)? {
                each(self, relative, &hive, &real)?;
            }
        }
        for os in [
            "nt",
            "win2008_32",
            "win2008r2_64",
            "win2012_64",
            "win2016_64",
            "win2022_64",
        ] {
            for file in ["sam.reg", "security.reg"] {
                let real = format!("hives/aiowinreg/{os}/{file}");
                if let Some(hive) = self.real(&real)? {
                    each(self, &format!("aiowinreg_{os}_{file}"), &hive, &real)?;
                }
            }
        }
        Ok(())
    }

    /// `hive_replay` input: the hive's and the first log's lengths, the hive, the logs.
    fn dirty_hives(&mut self) -> Result<(), String> {
        let add_replay = |seeds: &mut Self, name: &str, hive: Vec<u8>, logs: Vec<Vec<u8>>| {
            let mut seed = (hive.len() as u32).to_le_bytes().to_vec();
            let first_log = logs.first().map_or(0, Vec::len) as u32;
            seed.extend_from_slice(&first_log.to_le_bytes());
            seed.extend(hive);
            logs.into_iter().for_each(|log| seed.extend(log));
            seeds.add(name, &seed)
        };
        for relative in SAMPLE_HIVES {
            let path = self.sample.join(relative);
            let logs = ["LOG1", "LOG2"]
                .iter()
                .map(|log| read(&PathBuf::from(format!("{}.{log}", path.display()))))
                .collect::<Result<Vec<_>, _>>()?;
            add_replay(self, &format!("sample_{relative}"), read(&path)?, logs)?;
        }
        for (index, (hive, logs)) in DIRTY_HIVES.iter().enumerate() {
            let Some(hive_bytes) = self.real(&format!("hives/{hive}"))? else {
                continue;
            };
            let mut log_bytes = Vec::new();
            for log in logs.iter() {
                log_bytes.extend(self.real(&format!("hives/{log}"))?);
            }
            add_replay(self, &format!("{index}_{hive}"), hive_bytes, log_bytes)?;
        }
        Ok(())
    }

    /// A hive exported as .reg text, in both encodings `reg_import` reads.
    fn reg_export(&mut self, name: &str, hive: &[u8]) -> Result<(), String> {
        let Ok(hive) = Hive::from_bytes(hive.to_vec()) else {
            return Ok(());
        };
        let Ok(text) = reg_file::export(&hive, "", r"HKEY_LOCAL_MACHINE\SOFTWARE") else {
            return Ok(());
        };
        // Imports cost a search per key: the first lines are enough to seed every construct.
        let text: String = text.lines().take(400).map(|l| format!("{l}\r\n")).collect();
        self.add(&format!("{name}.utf16.reg"), &reg_file::encode_file(&text))?;
        self.add(&format!("{name}.utf8.reg"), text.as_bytes())
    }

    /// Calls `each` with every WIM seed: the sample, an uncompressed copy of it (mutations of
    /// plain data reach further than mutations of compressed chunks) and the small real WIMs.
    fn wims(
        &mut self,
        mut each: impl FnMut(&mut Self, &str, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let sample = self.sample.with_extension("wim");
        each(self, "sample.wim", &read(&sample)?)?;
        if let Some(plain) = self.uncompressed_copy(&sample)? {
            each(self, "sample.uncompressed.wim", &plain)?;
        }
        for path in self.real_files("images", ".wim") {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            each(self, &name, &read(&path)?)?;
        }
        Ok(())
    }

    /// `wim`, exported without compression by wimlib-imagex, when it is installed.
    fn uncompressed_copy(&mut self, wim: &Path) -> Result<Option<Vec<u8>>, String> {
        std::fs::create_dir_all(&self.scratch)
            .map_err(|e| format!("{}: {e}", self.scratch.display()))?;
        let copy = self.scratch.join("uncompressed.wim");
        let _ = std::fs::remove_file(&copy);
        let exported = Command::new("wimlib-imagex")
            .arg("export")
            .arg(wim)
            .arg("all")
            .arg(&copy)
            .arg("--compress=none")
            .output()
            .is_ok_and(|out| out.status.success());
        if !exported {
            eprintln!("fuzz: wimlib-imagex export failed: no uncompressed WIM seed");
            return Ok(None);
        }
        read(&copy).map(Some)
    }

    /// `wim_parts` input, cut out of a WIM: 0 and the header; 1 and the blob table; 2 and each
    /// uncompressed metadata resource; 3 and the XML data.
    fn wim_parts(&mut self, name: &str, wim: &[u8]) -> Result<(), String> {
        const HEADER_SIZE: usize = 208;
        const BLOB_TABLE_RESOURCE: usize = 0x30;
        const XML_RESOURCE: usize = 0x48;
        const BLOB_ENTRY_SIZE: usize = 50;
        const METADATA_FLAG: u8 = 0x02;
        const COMPRESSED_FLAG: u8 = 0x04;
        let part = |id: u8, bytes: &[u8]| [&[id][..], bytes].concat();
        let Some(header) = wim.get(..HEADER_SIZE) else {
            return Ok(());
        };
        self.add(&format!("{name}.header"), &part(0, header))?;
        // A resource header: a 7-byte size, a flags byte, the offset and the original size.
        let resource = |at: usize, bytes: &[u8]| {
            let size = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) & ((1 << 56) - 1);
            let flags = bytes[at + 7];
            let offset = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
            let range = (offset as usize)..(offset as usize).saturating_add(size as usize);
            (flags, range)
        };
        let (flags, range) = resource(BLOB_TABLE_RESOURCE, header);
        if let Some(table) = wim.get(range).filter(|_| flags & COMPRESSED_FLAG == 0) {
            self.add(&format!("{name}.blob_table"), &part(1, table))?;
            for (index, entry) in table.chunks_exact(BLOB_ENTRY_SIZE).enumerate() {
                let (flags, range) = resource(0, entry);
                if flags & METADATA_FLAG != 0 && flags & COMPRESSED_FLAG == 0 {
                    if let Some(metadata) = wim.get(range) {
                        self.add(&format!("{name}.metadata{index}"), &part(2, metadata))?;
                    }
                }
            }
        }
        let (_, range) = resource(XML_RESOURCE, header);
        if let Some(xml) = wim.get(range) {
            self.add(&format!("{name}.xml"), &part(3, xml))?;
        }
        Ok(())
    }

    /// `disk` input: the kind (0 raw, 1 VHD, 2 VHDX, 3 qcow2), then the file as sparse runs.
    /// From the real images, and from a small GPT disk made with sgdisk and converted by
    /// qemu-img (qcow2 versions 2 and 3, compressed, and an overlay naming a backing file).
    fn disks(&mut self) -> Result<(), String> {
        for (extension, kind) in [
            (".vhd", 1u8),
            (".vhdx", 2),
            (".vhd.bz2", 1),
            (".vhdx.bz2", 2),
        ] {
            for path in self.real_files("images", extension) {
                let bytes = if extension.ends_with(".bz2") {
                    match decompressed(&path) {
                        Some(bytes) => bytes,
                        None => continue,
                    }
                } else {
                    read(&path)?
                };
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                self.add(&name, &[&[kind][..], &sparse(&bytes)].concat())?;
            }
        }
        let Some(raw) = self.gpt_disk(8 << 20)? else {
            return Ok(());
        };
        self.add("gpt.img", &[&[0u8][..], &sparse(&read(&raw)?)].concat())?;
        for (format, options, kind) in [
            ("vpc", "subformat=dynamic", 1u8),
            ("vpc", "subformat=fixed", 1),
            ("vhdx", "subformat=dynamic", 2),
            ("vhdx", "subformat=fixed", 2),
        ] {
            let converted = self.scratch.join(format!("{format}.{}", &options[10..]));
            let made = Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", format, "-o", options])
                .arg(&raw)
                .arg(&converted)
                .output()
                .is_ok_and(|out| out.status.success());
            if made {
                let name = format!("gpt.{format}.{}", &options[10..]);
                self.add(&name, &[&[kind][..], &sparse(&read(&converted)?)].concat())?;
            } else {
                eprintln!("fuzz: qemu-img convert to {format} failed: no such seed");
            }
        }
        self.qcow2_disks(&raw)
    }

    /// qcow2 seeds of the raw disk `raw`: versions 2 and 3, small clusters, compressed
    /// clusters, and an empty overlay naming `raw` as its backing file (which the fuzz input
    /// does not carry, so opening it ends at the missing backing file).
    fn qcow2_disks(&mut self, raw: &Path) -> Result<(), String> {
        let backing = raw.to_string_lossy().into_owned();
        let recipes: [(&str, &[&str]); 5] = [
            (
                "v2",
                &["convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10"],
            ),
            (
                "v3",
                &["convert", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1"],
            ),
            (
                "cluster-4k",
                &[
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "qcow2",
                    "-o",
                    "cluster_size=4K",
                ],
            ),
            ("compressed", &["convert", "-c", "-f", "raw", "-O", "qcow2"]),
            (
                "backing",
                &["create", "-f", "qcow2", "-F", "raw", "-b", &backing],
            ),
        ];
        for (name, args) in recipes {
            let image = self.scratch.join(format!("gpt.{name}.qcow2"));
            let mut command = Command::new("qemu-img");
            command.args(args);
            if name != "backing" {
                command.arg(raw);
            }
            let made = command
                .arg(&image)
                .output()
                .is_ok_and(|out| out.status.success());
            if made {
                let seed = format!("gpt.{name}.qcow2");
                self.add(&seed, &[&[3u8][..], &sparse(&read(&image)?)].concat())?;
            } else {
                eprintln!("fuzz: qemu-img could not make the {name} qcow2 seed");
            }
        }
        Ok(())
    }

    /// A raw disk of `size` bytes with a GPT of two partitions, made by sgdisk (`None` when
    /// sgdisk is not installed).
    fn gpt_disk(&mut self, size: u64) -> Result<Option<PathBuf>, String> {
        std::fs::create_dir_all(&self.scratch)
            .map_err(|e| format!("{}: {e}", self.scratch.display()))?;
        let raw = self.scratch.join(format!("gpt-{size}.img"));
        let file = std::fs::File::create(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        file.set_len(size)
            .map_err(|e| format!("{}: {e}", raw.display()))?;
        let last = size / 512 - 34;
        let made = Command::new("sgdisk")
            .args([
                "-a",
                "1",
                "-n",
                &format!("1:34:{}", last / 2),
                "-t",
                "1:0700",
            ])
            .args(["-n", &format!("2:{}:{last}", last / 2 + 1), "-t", "2:ef00"])
            .args(["-c", "1:Windows"])
            .arg(&raw)
            .output()
            .is_ok_and(|out| out.status.success());
        if !made {
            eprintln!("fuzz: sgdisk failed: no GPT seed");
            return Ok(None);
        }
        Ok(Some(raw))
    }

    /// `partition_table` input: small raw disks, GPT (sgdisk) and MBR with an extended
    /// partition (written here).
    fn partition_tables(&mut self) -> Result<(), String> {
        if let Some(raw) = self.gpt_disk(64 << 10)? {
            self.add("gpt", &read(&raw)?)?;
        }
        let mut mbr = vec![0u8; 64 << 10];
        let mut entry = |sector: usize, slot: usize, kind: u8, first: u32, count: u32| {
            let at = sector * 512 + 446 + slot * 16;
            mbr[at + 4] = kind;
            mbr[at + 8..at + 12].copy_from_slice(&first.to_le_bytes());
            mbr[at + 12..at + 16].copy_from_slice(&count.to_le_bytes());
            mbr[sector * 512 + 510..sector * 512 + 512].copy_from_slice(&[0x55, 0xAA]);
        };
        entry(0, 0, 0x07, 2, 30);
        entry(0, 1, 0x05, 32, 96);
        // The extended partition's chain: each EBR's first entry is relative to the EBR, the
        // second (the next EBR) to the extended partition's start.
        entry(32, 0, 0x07, 1, 30);
        entry(32, 1, 0x05, 32, 64);
        entry(64, 0, 0x0C, 1, 60);
        self.add("mbr_extended", &mbr)
    }

    fn event_logs(&mut self) -> Result<(), String> {
        let logs = self.sample.join("Windows/System32/winevt/Logs");
        let mut paths = Vec::new();
        collect_files(&logs, ".evtx", &mut paths);
        paths.extend(self.real_files("evtx", ".evtx"));
        for path in paths {
            let bytes = read(&path)?;
            // Past the first chunks a log only repeats what they seed.
            let kept = &bytes[..bytes.len().min(4096 + 3 * 65536)];
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            self.add(&name, kept)?;
        }
        Ok(())
    }

    /// The sample's unattend.xml in every encoding an answer file comes in, and the
    /// reference action files (XML of another shape).
    fn answer_files(&mut self) -> Result<(), String> {
        let unattend = read(&self.sample.join("Windows/Panther/unattend.xml"))?;
        let text = String::from_utf8_lossy(&unattend).to_string();
        self.add("unattend.utf8.xml", &unattend)?;
        self.add(
            "unattend.utf16.xml",
            &reseal_nt::utf16::encode_le_with_bom(&text),
        )?;
        let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
        utf8_bom.extend_from_slice(&unattend);
        self.add("unattend.utf8bom.xml", &utf8_bom)?;
        if let Some(real) = &self.real {
            let mut paths = Vec::new();
            collect_files(
                &real.join("../../reference/actionfiles"),
                ".xml",
                &mut paths,
            );
            for path in paths.into_iter().take(1) {
                self.add("actionfile.xml", &read(&path)?)?;
            }
        }
        Ok(())
    }

    fn state_inis(&mut self) -> Result<(), String> {
        let state = read(&self.sample.join("Windows/Setup/State/State.ini"))?;
        let text = String::from_utf8_lossy(&state).to_string();
        self.add("State.ini", &state)?;
        self.add(
            "State.utf16.ini",
            &reseal_nt::utf16::encode_le_with_bom(&text),
        )?;
        self.add("no_state_section.ini", b"[Other]\r\nImageState=X\r\n")
    }
}

fn collect_files(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, extension, found);
        } else if path.to_string_lossy().ends_with(extension) {
            found.push(path);
        }
    }
}

/// `bzip2 -dc path`, when bzip2 is installed.
fn decompressed(path: &Path) -> Option<Vec<u8>> {
    let out = Command::new("bzip2").arg("-dc").arg(path).output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// `bytes` in the layout `reseal_fuzz::sparse_file` reads: the length in sectors, then a run
/// for each stretch of sectors that are not all zero.
fn sparse(bytes: &[u8]) -> Vec<u8> {
    const SECTOR: usize = 512;
    const MAX_RUN: usize = 64 * 1024 - SECTOR;
    let mut out = ((bytes.len() / SECTOR) as u32).to_le_bytes().to_vec();
    let mut start = None;
    let sectors = bytes.len().div_ceil(SECTOR);
    for index in 0..=sectors {
        let sector = bytes.get(index * SECTOR..((index + 1) * SECTOR).min(bytes.len()));
        let zero = sector.is_none_or(|s| s.iter().all(|&b| b == 0));
        let begin = *start.get_or_insert(index * SECTOR);
        let run_end = index * SECTOR;
        if zero || run_end - begin >= MAX_RUN {
            if run_end > begin {
                out.extend_from_slice(&(begin as u32).to_le_bytes());
                out.extend_from_slice(&((run_end - begin) as u16).to_le_bytes());
                out.extend_from_slice(&bytes[begin..run_end.min(bytes.len())]);
            }
            start = if zero { None } else { Some(run_end) };
        }
    }
    out
}
