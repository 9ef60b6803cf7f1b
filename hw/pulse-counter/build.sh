#!/usr/bin/env bash
# Builds the pulse counter firmware (release, thumbv6m-none-eabi), prints its
# size, then checks and tests the hardware-free timing crate on the host:
#   fmt → build → size → clippy → test
# Exits non-zero on any failure. Usable from CI: `bash hw/pulse-counter/build.sh`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The firmware never shares the host workspace's target directory.
export CARGO_TARGET_DIR="$here/target"

target=thumbv6m-none-eabi
host="$(rustc -vV | sed -n 's/^host: //p')"
elf="$CARGO_TARGET_DIR/$target/release/pulse-counter"

step() { printf '\n== %s\n' "$*"; }

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$target"; then
        step "rustup target add $target"
        rustup target add "$target"
    fi
    if ! rustup component list --installed | grep -q '^clippy'; then
        rustup component add clippy rustfmt
    fi
fi

step "format check"
# Name the packages: `cargo fmt --all` would also walk the workspace of the path
# dependency (the host workspace under bench/), which this script must not touch.
cargo fmt -p pulse-counter-firmware -p pulse-counter-timing -- --check

step "firmware: cargo build --release --target $target"
start=$(date +%s)
cargo build --release --locked --target "$target"
echo "firmware build took $(($(date +%s) - start)) s"

step "firmware size ($elf)"
# Section headers straight from the ELF: no extra package needed. text = flash
# only (code, read-only data, boot2, vectors); data = initialised RAM (stored in
# flash, copied to RAM at reset); bss = zeroed RAM.
if command -v python3 >/dev/null 2>&1; then
    python3 - "$elf" <<'PY'
import struct, sys
path = sys.argv[1]
with open(path, "rb") as f:
    elf = f.read()
if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
    sys.exit(f"{path}: not a little-endian ELF32 file")
shoff, = struct.unpack_from("<I", elf, 0x20)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
secs = [struct.unpack_from("<IIIIIIIIII", elf, shoff + i * shentsize) for i in range(shnum)]
strtab_off = secs[shstrndx][4]
def name(off):
    end = elf.index(b"\0", strtab_off + off)
    return elf[strtab_off + off:end].decode()
SHT_NOBITS, SHF_WRITE, SHF_ALLOC = 8, 0x1, 0x2
text = data = bss = 0
rows = []
for s in secs:
    nm, typ, flags, addr, _off, size = name(s[0]), s[1], s[2], s[3], s[4], s[5]
    if not flags & SHF_ALLOC or size == 0:
        continue
    if typ == SHT_NOBITS:
        kind = "bss"; bss += size
    elif flags & SHF_WRITE:
        kind = "data"; data += size
    else:
        kind = "text"; text += size
    rows.append((nm, kind, addr, size))
for nm, kind, addr, size in rows:
    print(f"  {nm:<16} {kind:<5} 0x{addr:08x} {size:>8} B")
print(f"   text    data     bss     dec     hex")
print(f"{text:>7} {data:>7} {bss:>7} {text + data + bss:>7} {text + data + bss:>7x}")
print(f"flash {text + data} B of 2 MiB ({(text + data) / (2 << 20):.1%}), "
      f"RAM {data + bss} B of 264 KiB ({(data + bss) / (264 << 10):.1%})")
PY
elif command -v llvm-size >/dev/null 2>&1; then
    llvm-size -A "$elf"
else
    size -A "$elf"
fi

step "timing crate: clippy (host, warnings denied)"
cargo clippy --locked -p pulse-counter-timing --target "$host" --all-targets -- -D warnings

step "timing crate: host tests ($host)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --lib --tests: the crate has no doc tests, and an empty doc-test run must not
# be the last word of the log.
cargo test --locked -p pulse-counter-timing --target "$host" --lib --tests 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "pulse-counter-timing: %d passed, %d failed\n", p, f }' "$log"
