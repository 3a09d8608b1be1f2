#!/usr/bin/env bash
# Builds the C core (FASTMLP_PYTHON=OFF) with its C tests and warnings as
# errors for other targets than this machine's, and runs what it can:
#
#   aarch64          Linux aarch64, aarch64-linux-gnu-gcc; engine and NEON
#                    kernel tests under qemu-aarch64; must use the NEON kernels
#   aarch64-nothr    the same with FASTMLP_THREADS=OFF
#   aarch64-clang    Linux aarch64, clang --target=aarch64-linux-gnu; qemu
#   mingw            Windows x86-64, x86_64-w64-mingw32-gcc; engine test
#                    under wine when wine is installed
#   clang            this machine with clang; engine test
#   generic          this machine, compiled as for an architecture without
#                    kernels of its own (the portable micro-kernel); engine test
#   msvc-syntax      every source in MSVC mode (clang -fms-compatibility with
#                    __clang__ undefined, so compat.h takes its FM_MSVC
#                    branches) against wine's MSVC-style headers, for x64 and
#                    ARM64, syntax only; no GCC-only keyword or builtin in the
#                    sources outside compat.h, nor in the x64 sources once
#                    preprocessed that way
#
#   scripts/crosscheck.sh                 # every target
#   scripts/crosscheck.sh aarch64 mingw   # some of them
#
# Run as root, it installs the Debian packages it is missing with apt-get
# (FASTMLP_CROSSCHECK_INSTALL=0 turns that off); otherwise a target whose
# tools are missing is skipped with the reason. Ends with a table (target,
# built, ran, seconds, kernels); exits 1 when a target failed, 0 otherwise
# (skipped targets do not fail).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
wine_started=""
cleanup() {
    if [ -n "$wine_started" ]; then WINEPREFIX="$work/wine" "$wine_started" -k 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

all_targets="aarch64 aarch64-nothr aarch64-clang mingw clang generic msvc-syntax"
targets="${*:-$all_targets}"
for t in $targets; do
    case " $all_targets " in *" $t "*) ;; *) echo "unknown target $t (known: $all_targets)"; exit 2 ;; esac
done
wants() { case " $targets " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- tools -----------------------------------------------------------------------

aarch64_sysroot=/usr/aarch64-linux-gnu
# wine's MSVC-style C runtime and Windows headers (Debian: libwine-dev)
wine_include=""
for d in /usr/include/wine/wine /usr/include/wine; do
    if [ -f "$d/msvcrt/stdlib.h" ] && [ -f "$d/windows/windows.h" ]; then wine_include="$d"; break; fi
done

find_wine() {
    local w
    for w in wine wine64 /usr/lib/wine/wine64 /usr/lib/wine/wine; do
        if command -v "$w" >/dev/null 2>&1; then command -v "$w"; return 0; fi
    done
    return 1
}
find_wineserver() {
    local w
    for w in wineserver /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver; do
        if command -v "$w" >/dev/null 2>&1; then command -v "$w"; return 0; fi
    done
    return 1
}

# Debian packages for what the chosen targets need and this machine lacks.
missing_packages() {
    local pkgs=""
    command -v cmake >/dev/null || pkgs+=" cmake"
    if wants aarch64 || wants aarch64-nothr || wants aarch64-clang; then
        command -v aarch64-linux-gnu-gcc >/dev/null || pkgs+=" gcc-aarch64-linux-gnu"
        [ -f "$aarch64_sysroot/include/stdio.h" ] || pkgs+=" libc6-dev-arm64-cross"
        command -v qemu-aarch64 >/dev/null || pkgs+=" qemu-user"
    fi
    if wants aarch64-clang || wants clang || wants msvc-syntax; then
        command -v clang >/dev/null || pkgs+=" clang"
    fi
    if wants mingw; then
        command -v x86_64-w64-mingw32-gcc >/dev/null || pkgs+=" gcc-mingw-w64-x86-64"
        find_wine >/dev/null || pkgs+=" wine64"
    fi
    if wants msvc-syntax && [ -z "$wine_include" ]; then pkgs+=" libwine-dev"; fi
    echo "${pkgs# }"
}

# why the missing packages were not installed, when they were not
install_note=""
missing="$(missing_packages)"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        install_note="not root"
    elif [ "${FASTMLP_CROSSCHECK_INSTALL:-1}" = 0 ]; then
        install_note="FASTMLP_CROSSCHECK_INSTALL=0"
    elif ! command -v apt-get >/dev/null; then
        install_note="no apt-get"
    else
        echo "installing with apt-get: $missing"
        apt_start=$SECONDS
        # in a session of its own where setsid exists, so that stopping this
        # script (the test suite ends it with its session) never stops dpkg
        # halfway through an install
        detach=()
        if command -v setsid >/dev/null; then detach=(setsid -w); fi
        apt() {
            DEBIAN_FRONTEND=noninteractive "${detach[@]}" apt-get -o DPkg::Lock::Timeout=300 \
                "$@" >>"$work/apt.log" 2>&1
        }
        # the package lists may be missing or stale (a fresh container)
        # shellcheck disable=SC2086
        if ! apt install -y -q --no-install-recommends $missing; then
            apt update -q
            apt install -y -q --no-install-recommends $missing ||
                { tail -n 20 "$work/apt.log"; echo "apt-get install failed"; }
        fi
        echo "apt-get took $((SECONDS - apt_start)) s"
        for d in /usr/include/wine/wine /usr/include/wine; do
            if [ -f "$d/msvcrt/stdlib.h" ] && [ -f "$d/windows/windows.h" ]; then wine_include="$d"; break; fi
        done
        missing="$(missing_packages)"
        [ -z "$missing" ] || install_note="still missing after apt-get"
    fi
fi
[ -z "$install_note" ] || echo "packages not installed ($install_note): $missing"

# ---- results -----------------------------------------------------------------------

rows=()
failed=0
# "TOOL not found" for the first of the commands given that is missing
need() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "$tool not found${install_note:+ (not installed: $install_note)}"
            return
        fi
    done
}
target_start=$SECONDS
# row TARGET BUILT RAN KERNELS
row() {
    rows+=("$(printf '%-14s | %-7s | %-7s | %4s | %s' "$1" "$2" "$3" $((SECONDS - target_start)) "$4")")
}
skip() { echo "skip $1: $2"; row "$1" skipped - "$2"; }
fail() { echo "FAIL $1: $2"; failed=1; }

# "neon 12x8/6x8, ..." from the engine test's "isa X: kernels A (float32), B (float64): ok" lines
kernels_of() {
    sed -n 's/^isa [a-z0-9]*: kernels \([a-z0-9]*\) \([0-9x/]*\) (float32), [a-z0-9]* \([0-9x/]*\) (float64): ok$/\1 \2\/\3/p' "$1" |
        paste -sd, - | sed 's/,/, /g'
}

# configure_and_build NAME BUILD_DIR CMAKE_ARGS...: 0 when it built without a warning
configure_and_build() {
    local name="$1" dir="$2"
    shift 2
    if ! cmake -S "$root" -B "$dir" -DFASTMLP_PYTHON=OFF -DFASTMLP_C_TESTS=ON \
        -DFASTMLP_WERROR=ON "$@" >"$dir.log" 2>&1; then
        tail -n 30 "$dir.log"
        fail "$name" "cmake configure failed"
        return 1
    fi
    if ! cmake --build "$dir" -j 2 >>"$dir.log" 2>&1; then
        grep -E -B2 -A8 'error|warning' "$dir.log" | head -n 60
        fail "$name" "build failed"
        return 1
    fi
    if grep -qi 'warning' "$dir.log"; then
        grep -i -A5 'warning' "$dir.log" | head -n 40
        fail "$name" "build warnings"
        return 1
    fi
}

# check_engine_run NAME LOG THREADS: the engine test's output says every
# instruction set it ran passed, and the thread backend
check_engine_run() {
    local name="$1" log="$2" threads="$3"
    cat "$log"
    if [ "$(tail -n 1 "$log")" != "ok (threads $threads)" ]; then
        fail "$name" "engine test failed (want a last line \"ok (threads $threads)\")"
        return 1
    fi
    if grep -q '^FAIL' "$log" || ! grep -q '^isa .*: ok$' "$log"; then
        fail "$name" "engine test output"
        return 1
    fi
}

qemu=(qemu-aarch64 -L "$aarch64_sysroot")

# check_aarch64 NAME BUILD_DIR THREADS
check_aarch64() {
    local name="$1" dir="$2" threads="$3" log="$2/engine.out"
    echo "== $name: engine test under qemu-aarch64"
    if ! timeout 600 "${qemu[@]}" "$dir/fastmlp_engine_test" >"$log" 2>&1; then
        cat "$log"
        fail "$name" "engine test exited with an error under qemu"
        row "$name" yes qemu FAILED
        return
    fi
    check_engine_run "$name" "$log" "$threads" || { row "$name" yes qemu FAILED; return; }
    if ! grep -Eq '^isa neon: kernels neon [0-9]+x[0-9]+ \(float32\), neon [0-9]+x[0-9]+ \(float64\): ok$' "$log"; then
        fail "$name" "the NEON kernels were not used"
        row "$name" yes qemu FAILED
        return
    fi
    echo "== $name: NEON kernel test under qemu-aarch64"
    if ! timeout 600 "${qemu[@]}" "$dir/fastmlp_neon_kernel_test" >"$dir/kernel.out" 2>&1 ||
        ! grep -Eq '^neon f32 [0-9]+x[0-9]+ ok$' "$dir/kernel.out" ||
        ! grep -Eq '^neon f64 [0-9]+x[0-9]+ ok$' "$dir/kernel.out"; then
        cat "$dir/kernel.out"
        fail "$name" "NEON kernel test failed"
        row "$name" yes qemu FAILED
        return
    fi
    cat "$dir/kernel.out"
    row "$name" yes qemu "$(kernels_of "$log")"
}

aarch64_tools() {
    if [ ! -f "$aarch64_sysroot/include/stdio.h" ]; then
        echo "no aarch64 C library in $aarch64_sysroot${install_note:+ (not installed: $install_note)}"
    else
        need cmake aarch64-linux-gnu-gcc qemu-aarch64
    fi
}

# ---- targets -------------------------------------------------------------------------

target_aarch64() {
    local name="$1" threads="$2" why
    why="$(aarch64_tools)"
    if [ -n "$why" ]; then skip "$name" "$why"; return; fi
    echo "== $name: build (aarch64-linux-gnu-gcc, FASTMLP_THREADS=$threads)"
    configure_and_build "$name" "$work/$name" \
        -DCMAKE_TOOLCHAIN_FILE="$root/scripts/toolchains/aarch64-linux-gnu.cmake" \
        -DFASTMLP_THREADS="$threads" || { row "$name" FAILED - -; return; }
    check_aarch64 "$name" "$work/$name" "$([ "$threads" = ON ] && echo pthreads || echo none)"
}

target_aarch64_clang() {
    local name=aarch64-clang why
    why="$(aarch64_tools)"
    [ -n "$why" ] || why="$(need clang)"
    if [ -n "$why" ]; then skip "$name" "$why"; return; fi
    echo "== $name: build (clang --target=aarch64-linux-gnu)"
    configure_and_build "$name" "$work/$name" \
        -DCMAKE_TOOLCHAIN_FILE="$root/scripts/toolchains/aarch64-linux-gnu-clang.cmake" ||
        { row "$name" FAILED - -; return; }
    check_aarch64 "$name" "$work/$name" pthreads
}

target_mingw() {
    local name=mingw dir="$work/mingw" wine why
    why="$(need cmake x86_64-w64-mingw32-gcc)"
    if [ -n "$why" ]; then skip "$name" "$why"; return; fi
    echo "== $name: build (x86_64-w64-mingw32-gcc)"
    configure_and_build "$name" "$dir" \
        -DCMAKE_TOOLCHAIN_FILE="$root/scripts/toolchains/x86_64-w64-mingw32.cmake" ||
        { row "$name" FAILED - -; return; }
    if ! wine="$(find_wine)"; then
        echo "mingw: wine not found, built only${install_note:+ (not installed: $install_note)}"
        row "$name" yes "no wine" -
        return
    fi
    echo "== $name: engine test under wine ($wine)"
    wine_started="$(find_wineserver)"
    # a prefix of its own, no Mono or Gecko installer, no debug chatter
    if ! WINEPREFIX="$work/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        timeout 600 "$wine" "$dir/fastmlp_engine_test.exe" </dev/null >"$dir/engine.out" \
        2>"$dir/wine.err"; then
        cat "$dir/engine.out" "$dir/wine.err"
        fail "$name" "engine test exited with an error under wine"
        row "$name" yes wine FAILED
        return
    fi
    tr -d '\r' <"$dir/engine.out" >"$dir/engine.txt"
    check_engine_run "$name" "$dir/engine.txt" win32 || { row "$name" yes wine FAILED; return; }
    row "$name" yes wine "$(kernels_of "$dir/engine.txt")"
}

# native NAME CMAKE_ARGS...: built on this machine, its engine test run here
target_native() {
    local name="$1" dir="$work/$1" why
    shift
    why="$(need cmake "${CC:-cc}")"
    if [ -n "$why" ]; then skip "$name" "$why"; return; fi
    echo "== $name: build ($*)"
    configure_and_build "$name" "$dir" "$@" || { row "$name" FAILED - -; return; }
    echo "== $name: engine test"
    if ! timeout 600 "$dir/fastmlp_engine_test" >"$dir/engine.out" 2>&1; then
        cat "$dir/engine.out"
        fail "$name" "engine test exited with an error"
        row "$name" yes native FAILED
        return
    fi
    check_engine_run "$name" "$dir/engine.out" pthreads || { row "$name" yes native FAILED; return; }
    row "$name" yes native "$(kernels_of "$dir/engine.out")"
}

# What MSVC would compile, as far as clang can tell without MSVC's own
# headers: clang in MSVC mode with __clang__ undefined, so that compat.h
# takes its FM_MSVC branches; C runtime and Windows headers from wine, plus
# the declarations of UCRT's <math.h> that wine's lacks.
target_msvc_syntax() {
    local name=msvc-syntax resource n=0 bad=0 t arch why
    why="$(need clang)"
    if [ -n "$why" ]; then skip "$name" "$why"; return; fi
    if [ -z "$wine_include" ]; then
        skip "$name" "no MSVC-style headers (Debian: libwine-dev)${install_note:+ (not installed: $install_note)}"
        return
    fi
    resource="$(clang -print-resource-dir)/include"
    cat >"$work/ucrt_math.h" <<'EOF'
double __cdecl fma(double x, double y, double z);
float __cdecl fmaf(float x, float y, float z);
EOF
    local common=(-fms-compatibility -fms-extensions -std=c11 -U__clang__
                  -Wno-builtin-macro-redefined -nostdinc -isystem "$resource"
                  -isystem "$wine_include/msvcrt" -isystem "$wine_include/windows"
                  -include "$work/ucrt_math.h" -I"$root/csrc" -D_CRT_SECURE_NO_WARNINGS)
    local warn=(-Wall -Wextra -Wno-unused-parameter -Wvla -Werror)
    local generic=(gemm activations losses optimizers model)
    local gcc_words='__attribute__|__builtin_|__atomic_|__sync_|__asm|\basm\b|__thread|typeof|__extension__'
    # one_tu TARGET FILE ARGS...: syntax check; on x64, also the GCC-only
    # words in the lines that come from csrc/ once preprocessed, less the
    # __builtin_ia32_ calls of clang's x86 intrinsics that take an immediate
    # (macros in its headers, functions in MSVC's; written by hand outside
    # compat.h, the source check below finds them, so compat.h's lines keep
    # theirs); not on ARM64, where all of clang's arm_neon.h intrinsics are
    # macros made of its builtins
    one_tu() {
        local target="$1" file="$2"
        shift 2
        n=$((n + 1))
        if ! clang --target="$target" "${common[@]}" "${warn[@]}" -fsyntax-only "$@" \
            "$root/csrc/$file" >"$work/msvc.log" 2>&1; then
            echo "-- $target $file $*"
            head -n 20 "$work/msvc.log"
            bad=1
            return
        fi
        [ "$target" = x86_64-pc-windows-msvc ] || return
        clang --target="$target" "${common[@]}" -E "$@" "$root/csrc/$file" 2>/dev/null |
            awk '/^# [0-9]+ "/ { own = index($3, "/csrc/") > 0; compat = index($3, "/csrc/compat.h") > 0; next }
                 own { if (!compat) gsub(/__builtin_ia32_[A-Za-z0-9_]+/, "(intrinsic)"); print }' >"$work/msvc.i"
        if grep -qE "$gcc_words" "$work/msvc.i"; then
            grep -nE "$gcc_words" "$work/msvc.i" | head -n 5
            echo "-- $target $file $*: GCC-only words above, in MSVC mode"
            bad=1
        fi
    }
    echo "== $name: no GCC-only words outside compat.h"
    if (cd "$root" && grep -nE "$gcc_words" csrc/*.[ch] csrc/tests/*.c | grep -v '^csrc/compat\.h:'); then
        echo "-- GCC-only words above, outside csrc/compat.h"
        bad=1
    fi
    echo "== $name: clang in MSVC mode (FM_MSVC), x64 and ARM64, syntax only"
    for t in x86_64-pc-windows-msvc aarch64-pc-windows-msvc; do
        arch="${t%%-*}"
        # MSVC's <intrin.h> declares _m_prefetchw for any x64 target; clang's
        # only when PRFCHW is on
        if [ "$arch" = x86_64 ]; then
            local isas=(sse2 avx2 avx512) variants=-DFM_VARIANTS_X86 own=(-mprfchw)
        else
            local isas=(neon) variants=-DFM_VARIANTS_NEON own=()
        fi
        for isa in "${isas[@]}"; do
            local flags=("${own[@]}")
            case "$isa" in
                avx2) flags+=(-mavx2 -mfma) ;;
                avx512) flags+=(-mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma) ;;
            esac
            for f in "${generic[@]}"; do
                for prec in -DFM_REAL_F32 -UFM_REAL_F32; do
                    one_tu "$t" "$f.c" "${flags[@]}" -DFM_ISA="$isa" \
                        -DFM_ISA_"${isa^^}" "$prec"
                done
            done
        done
        for f in layout.c dispatch.c rng.c interrupt.c tests/engine_test.c; do
            one_tu "$t" "$f" "$variants" "${own[@]}"
        done
        [ "$arch" = x86_64 ] || one_tu "$t" tests/neon_kernel_test.c
        one_tu "$t" threads.c "${own[@]}"
        one_tu "$t" threads.c -DFM_NO_THREADS "${own[@]}"
    done
    if [ "$bad" != 0 ]; then
        fail "$name" "MSVC-mode syntax check"
        row "$name" FAILED - -
        return
    fi
    echo "$n translation units clean"
    row "$name" "syntax" - "$n translation units (x64, ARM64)"
}

start=$SECONDS
for t in $targets; do
    target_start=$SECONDS
    case "$t" in
        aarch64) target_aarch64 aarch64 ON ;;
        aarch64-nothr) target_aarch64 aarch64-nothr OFF ;;
        aarch64-clang) target_aarch64_clang ;;
        mingw) target_mingw ;;
        clang) if command -v clang >/dev/null 2>&1; then target_native clang -DCMAKE_C_COMPILER=clang
               else skip clang "clang not found"; fi ;;
        generic) target_native generic -DFASTMLP_ARCH=generic ;;
        msvc-syntax) target_msvc_syntax ;;
    esac
done

echo
echo "crosscheck summary ($((SECONDS - start)) s)"
printf '%-14s | %-7s | %-7s | %4s | %s\n' target built ran s kernels
for r in "${rows[@]}"; do echo "$r"; done
exit "$failed"
