//! The event log writer and record counter, checked against the `evtx` crate (a reader we did not
//! write) and real Windows logs.

use evtx::{EvtxParser, ParserSettings};
use reseal_nt::evtx::{
    chunk_header_crc, count_records, empty_log, event_record, file_header_crc, log_file,
    ChunkBuilder, EvtxError, CHUNK_HEADER_SIZE, CHUNK_SIZE, FILE_HEADER_SIZE, RECORD_HEADER_SIZE,
};
use reseal_nt::le;

/// Parses with checksum validation on: a CRC mistake makes the chunk fail instead of a warning.
fn strict_parser(bytes: Vec<u8>) -> EvtxParser<std::io::Cursor<Vec<u8>>> {
    EvtxParser::from_buffer(bytes)
        .expect("evtx crate opens the file")
        .with_configuration(
            ParserSettings::new()
                .validate_checksums(true)
                .num_threads(1),
        )
}

/// What the `evtx` crate makes of a file: (records it renders, records it finds but cannot
/// render). Damaged spots that are not records at all (`FailedToReadRecordAt`) are not counted.
fn evtx_crate_count(bytes: Vec<u8>) -> (u64, u64) {
    let mut parser = EvtxParser::from_buffer(bytes)
        .expect("evtx crate opens the file")
        .with_configuration(ParserSettings::new().num_threads(1));
    let (mut rendered, mut unrenderable) = (0, 0);
    for record in parser.records() {
        match record {
            Ok(_) => rendered += 1,
            Err(evtx::err::EvtxError::FailedToParseRecord { .. }) => unrenderable += 1,
            Err(_) => {}
        }
    }
    (rendered, unrenderable)
}

#[test]
fn empty_log_has_the_documented_layout() {
    let log = empty_log();
    assert_eq!(log.len(), FILE_HEADER_SIZE + CHUNK_SIZE);
    assert_eq!(&log[0..8], b"ElfFile\0");
    assert_eq!(le::u64_at(&log, 8).unwrap(), 0, "first chunk");
    assert_eq!(le::u64_at(&log, 16).unwrap(), 0, "last chunk");
    assert_eq!(le::u64_at(&log, 24).unwrap(), 1, "next record id");
    assert_eq!(le::u32_at(&log, 32).unwrap(), 128);
    assert_eq!(
        (le::u16_at(&log, 38).unwrap(), le::u16_at(&log, 36).unwrap()),
        (3, 1),
        "version"
    );
    assert_eq!(le::u16_at(&log, 40).unwrap(), 4096);
    assert_eq!(le::u16_at(&log, 42).unwrap(), 1, "chunk count");
    assert_eq!(le::u32_at(&log, 120).unwrap(), 0, "file flags");
    assert!(log[128..FILE_HEADER_SIZE].iter().all(|&b| b == 0));

    let chunk = &log[FILE_HEADER_SIZE..];
    assert_eq!(&chunk[0..8], b"ElfChnk\0");
    let (first_number, last_number) = (
        le::u64_at(chunk, 8).unwrap(),
        le::u64_at(chunk, 16).unwrap(),
    );
    let (first_id, last_id) = (
        le::u64_at(chunk, 24).unwrap(),
        le::u64_at(chunk, 32).unwrap(),
    );
    assert_eq!(first_number, last_number);
    assert_eq!(first_id, last_id);
    assert_eq!(le::u32_at(chunk, 48).unwrap(), 512, "free space offset");
    assert_eq!(
        le::u32_at(chunk, 52).unwrap(),
        0,
        "records CRC of no records"
    );
    assert!(chunk[CHUNK_HEADER_SIZE..].iter().all(|&b| b == 0));
}

#[test]
fn empty_log_crcs_verify_by_recomputation() {
    let log = empty_log();
    // Recomputed here from the layout, independently of the module's helpers.
    assert_eq!(
        le::u32_at(&log, 124).unwrap(),
        crc32fast::hash(&log[0..120])
    );
    let chunk = &log[FILE_HEADER_SIZE..];
    let mut covered = chunk[0..120].to_vec();
    covered.extend_from_slice(&chunk[128..512]);
    assert_eq!(le::u32_at(chunk, 124).unwrap(), crc32fast::hash(&covered));
    // And the helpers agree with that.
    assert_eq!(file_header_crc(&log), le::u32_at(&log, 124).unwrap());
    assert_eq!(chunk_header_crc(chunk), le::u32_at(chunk, 124).unwrap());
}

#[test]
fn empty_log_parses_with_the_evtx_crate_and_has_no_records() {
    let mut parser = strict_parser(empty_log());
    let header = parser.header();
    assert_eq!(header.chunk_count, 1);
    assert_eq!(header.next_record_id, 1);
    assert!(header.validate_checksum());
    let mut chunks = 0;
    for chunk in parser.chunks() {
        let chunk = chunk.expect("the empty chunk passes checksum validation");
        assert!(chunk.validate_header_checksum());
        assert!(chunk.validate_data_checksum());
        chunks += 1;
    }
    assert_eq!(chunks, 1);
    let records: Vec<_> = strict_parser(empty_log()).records().collect();
    assert!(records.is_empty(), "{} records", records.len());
    assert_eq!(count_records(&empty_log()), Ok(0));
}

/// A record whose BinXML is a bare fragment holding one empty element `<E/>` whose name is
/// stored inline, laid out for the chunk offset it will occupy.
fn minimal_binxml(record_offset: u32) -> Vec<u8> {
    let mut binxml = vec![0x0f, 0x01, 0x01, 0x00]; // fragment header
    binxml.extend_from_slice(&[0x01]); // open start element, no attributes
    let name: Vec<u8> = [0u8, 0, 0, 0, 0x45, 0, 1, 0, b'E', 0, 0, 0].to_vec();
    binxml.extend_from_slice(&((4 + name.len() + 1) as u32).to_le_bytes()); // data size
    let name_offset = record_offset + RECORD_HEADER_SIZE as u32 + binxml.len() as u32 + 4;
    binxml.extend_from_slice(&name_offset.to_le_bytes());
    binxml.extend_from_slice(&name);
    binxml.extend_from_slice(&[0x03, 0x00]); // close empty element, end of stream
    binxml
}

fn log_with_records(record_count: u64) -> Vec<u8> {
    let mut chunk = ChunkBuilder::new();
    for id in 1..=record_count {
        let binxml = minimal_binxml(chunk.next_record_offset());
        let record = event_record(id, 133_000_000_000_000_000 + id, &binxml);
        chunk.push_record(&record).unwrap();
    }
    log_file(&[chunk.finish()], record_count + 1)
}

#[test]
fn built_chunks_have_valid_crcs_and_counted_records() {
    let log = log_with_records(5);
    let chunk = &log[FILE_HEADER_SIZE..];
    assert_eq!(
        (
            le::u64_at(chunk, 8).unwrap(),
            le::u64_at(chunk, 16).unwrap()
        ),
        (1, 5)
    );
    assert_eq!(
        (
            le::u64_at(chunk, 24).unwrap(),
            le::u64_at(chunk, 32).unwrap()
        ),
        (1, 5)
    );
    let free = le::u32_at(chunk, 48).unwrap() as usize;
    assert_eq!(
        le::u32_at(chunk, 52).unwrap(),
        crc32fast::hash(&chunk[512..free])
    );
    let last_record = le::u32_at(chunk, 44).unwrap() as usize;
    assert_eq!(le::u64_at(chunk, last_record + 8).unwrap(), 5);
    assert_eq!(count_records(&log), Ok(5));
    for chunk in strict_parser(log.clone()).chunks() {
        let chunk = chunk.expect("chunk passes checksum validation");
        assert!(chunk.validate_checksum());
    }
    assert_eq!(evtx_crate_count(log), (5, 0));
}

#[test]
fn a_full_chunk_refuses_more_records() {
    let mut chunk = ChunkBuilder::new();
    let big = event_record(1, 0, &vec![0u8; CHUNK_SIZE - CHUNK_HEADER_SIZE]);
    assert!(matches!(
        chunk.push_record(&big),
        Err(EvtxError::ChunkFull { offset: 512, .. })
    ));
    assert_eq!(chunk.free_space(), CHUNK_SIZE - CHUNK_HEADER_SIZE);
}

const REAL_LOGS: &[&str] = &[
    "evtx/plaso/System2.evtx",
    "evtx/dfirartifactmuseum/Win10_BelkasoftCTF_InsiderThreat/Microsoft-Windows-Windows Defender%4WHC.evtx",
    "evtx/dfirartifactmuseum/Win10_APTSimulatorVM/Microsoft-Windows-Windows Defender%4Operational.evtx",
    "evtx/dfirartifactmuseum/Win2012R2_StolenSzechuan/Setup.evtx",
    "evtx/dfirartifactmuseum/Server2022_APTSimulatorVM/Microsoft-Windows-GroupPolicy%4Operational.evtx",
    "evtx/dfirartifactmuseum/Win11_RathbunVM/System.evtx",
    "evtx/dfirartifactmuseum/Win11_RathbunVM/Setup.evtx",
    "evtx/omerbenamram-evtx/2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx",
    "evtx/omerbenamram-evtx/Application_no_crc32.evtx",
    "evtx/omerbenamram-evtx/new-user-security.evtx",
];

#[test]
fn count_records_matches_the_evtx_crate_on_real_logs() {
    for relative in REAL_LOGS {
        let Some(path) = reseal_testutil::real_fixture(relative) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let ours = count_records(&bytes).unwrap_or_else(|e| panic!("{relative}: {e}"));
        let (rendered, unrenderable) = evtx_crate_count(bytes);
        assert_eq!(
            ours,
            rendered + unrenderable,
            "{relative}: evtx crate rendered {rendered}, found {unrenderable} it cannot render"
        );
    }
}

#[test]
fn count_records_errors_name_the_offset() {
    assert!(matches!(
        count_records(b"ElfFile\0"),
        Err(EvtxError::Truncated { offset: 0, .. })
    ));
    assert_eq!(
        count_records(&[0u8; 4096]),
        Err(EvtxError::BadFileSignature { offset: 0 })
    );
    let mut log = log_with_records(2);
    log[FILE_HEADER_SIZE..FILE_HEADER_SIZE + 8].copy_from_slice(b"NotChnk\0");
    assert_eq!(
        count_records(&log),
        Err(EvtxError::BadChunkSignature {
            offset: FILE_HEADER_SIZE as u64
        })
    );
}

#[test]
fn count_records_resumes_after_a_damaged_record() {
    let mut log = log_with_records(3);
    let first_record = FILE_HEADER_SIZE + CHUNK_HEADER_SIZE;
    log[first_record + 4..first_record + 8].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(count_records(&log), Ok(2));
    // A record of another pass (identifier outside the chunk's range) is not counted.
    let mut log = log_with_records(3);
    log[first_record + 8..first_record + 16].copy_from_slice(&99u64.to_le_bytes());
    log[first_record..first_record + 4].copy_from_slice(b"xx\0\0");
    assert_eq!(count_records(&log), Ok(2));
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_logs_never_panic() {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let originals = [log_with_records(40), empty_log()];
    for original in &originals {
        for _ in 0..3000 {
            let mut bytes = original.clone();
            match rng.next() % 4 {
                // Scribble over a few bytes, mostly in the headers and the first records.
                0 | 1 => {
                    for _ in 0..(1 + rng.next() % 8) {
                        let span = if rng.next() % 2 == 0 {
                            FILE_HEADER_SIZE + 2048
                        } else {
                            bytes.len()
                        };
                        let at = (rng.next() as usize) % span;
                        bytes[at] = rng.next() as u8;
                    }
                }
                // Put an extreme value into a header or size field.
                2 => {
                    let fields = [24, 42, FILE_HEADER_SIZE + 32, FILE_HEADER_SIZE + 48];
                    let at = fields[(rng.next() as usize) % fields.len()];
                    let extreme = [0u32, 1, 511, 513, 0xffff, 0x1_0000, u32::MAX];
                    let value = extreme[(rng.next() as usize) % extreme.len()];
                    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
                // Cut the file anywhere.
                _ => bytes.truncate((rng.next() as usize) % (bytes.len() + 1)),
            }
            let _ = count_records(&bytes);
        }
    }
}
