#!/bin/sh
# Builds the seed corpora under fuzz/corpus/ (kept out of git) from the real hives in
# ../shared/fixtures/real/hives (or $RESEAL_SHARED/fixtures/real/hives).
set -eu
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
hives=${RESEAL_SHARED:-$fuzz_dir/../../../../shared}/fixtures/real/hives
exec python3 - "$hives" "$fuzz_dir/corpus" <<'PY'
import os, random, struct, sys

hives, corpus = sys.argv[1:]
def read(relative):
    with open(os.path.join(hives, relative), "rb") as f:
        return f.read()
def write(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)

small_hives = [
    "hivex/special", "nt-hive/testhive",
    "yarp/BigDataHive", "yarp/UnicodeHive", "yarp/StringValuesHive", "yarp/ManySubkeysHive",
    "yarp/ExtendedASCIIHive", "yarp/BogusKeyNamesHive", "yarp/MultiSzHive",
    "yarp/NewDirtyHive1/NewDirtyHive", "yarp/OldDirtyHive/OldDirtyHive",
    "EricZimmerman/SAM", "EricZimmerman/SAM_DUPENAME", "EricZimmerman/SAMBadHBinHeader",
] + [f"aiowinreg/{d}/{f}" for d in ("nt", "win2008_32", "win2008r2_64", "win2012_64",
                                     "win2016_64", "win2022_64")
     for f in ("sam.reg", "security.reg")]
scripts = random.Random(1)
for relative in small_hives:
    name = relative.replace("/", "_")
    hive = read(relative)
    write("open_walk", name, hive)
    for variant in range(2):
        script = bytes(scripts.randrange(256) for _ in range(4 * scripts.randrange(1, 12)))
        write("open_edit_commit", f"{name}.{variant}", bytes([len(script)]) + script + hive)

def replay_seed(name, hive, *logs):
    logs = [read(log) for log in logs]
    head = struct.pack("<II", len(read(hive)), len(logs[0]) if logs else 0)
    write("replay", name, head + read(hive) + b"".join(logs))
replay_seed("new_dirty_both", "yarp/NewDirtyHive1/NewDirtyHive",
            "yarp/NewDirtyHive1/NewDirtyHive.LOG1", "yarp/NewDirtyHive1/NewDirtyHive.LOG2")
replay_seed("new_dirty_log1", "yarp/NewDirtyHive1/NewDirtyHive", "yarp/NewDirtyHive1/NewDirtyHive.LOG1")
replay_seed("new_dirty_log2", "yarp/NewDirtyHive1/NewDirtyHive", "yarp/NewDirtyHive1/NewDirtyHive.LOG2")
replay_seed("old_dirty", "yarp/OldDirtyHive/OldDirtyHive", "yarp/OldDirtyHive/OldDirtyHive.LOG1")
replay_seed("nt31_software", "regf-samples/3.1/SOFTWARE", "regf-samples/3.1/SOFTWARE.LOG")
replay_seed("dfwinreg_ntuser", "dfwinreg/NTUSER.DAT", "dfwinreg/NTUSER.DAT.LOG")
PY
