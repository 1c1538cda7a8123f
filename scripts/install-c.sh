#!/usr/bin/env bash
# Builds libringlog (release) and installs it for C programs under PREFIX:
#   PREFIX/lib/libringlog.so.VERSION with its SONAME link (libringlog.so.0.MINOR while the
#   version is 0.x, then libringlog.so.MAJOR) and the link-time name libringlog.so,
#   PREFIX/lib/libringlog.a, PREFIX/include/ringlog.h,
#   PREFIX/lib/pkgconfig/ringlog.pc (shared) and ringlog-static.pc (static).
# Then:  export PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
#        cc app.c $(pkg-config --cflags --libs ringlog)          # links libringlog.so
#        cc app.c $(pkg-config --cflags --libs ringlog-static)   # links libringlog.a
# A program linked to the shared library finds it at run time when PREFIX/lib is in the
# loader's path (ldconfig for /usr/local, or LD_LIBRARY_PATH).
# RINGLOG_PREBUILT=DIR installs the libraries from DIR instead of building (the tests use it).
set -euo pipefail
prefix=${1:?usage: scripts/install-c.sh PREFIX}
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
case $prefix in *[[:space:]]*)
    echo "install-c.sh: PREFIX '$prefix' has white space, which pkg-config cannot pass on" >&2
    exit 2 ;;
esac
cd "$(dirname "$0")/.."

if [ -n "${RINGLOG_PREBUILT:-}" ]; then
    libs=$RINGLOG_PREBUILT
else
    cargo build --release --quiet -p ringlog-ffi
    libs=${CARGO_TARGET_DIR:-target}/release
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

# The SONAME the library was linked with (ringlog-ffi/build.rs sets it): programs record it.
soname=$(readelf -d "$libs/libringlog.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
case $soname in libringlog.so.*) ;; *)
    echo "install-c.sh: $libs/libringlog.so has no libringlog SONAME ('$soname')" >&2
    exit 1 ;;
esac

install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$libs/libringlog.so" "$prefix/lib/libringlog.so.$version"
ln -sfn "libringlog.so.$version" "$prefix/lib/$soname"
ln -sfn "$soname" "$prefix/lib/libringlog.so"
install -m 0644 "$libs/libringlog.a" "$prefix/lib/libringlog.a"
install -m 0644 ringlog-ffi/include/ringlog.h "$prefix/include/ringlog.h"

# What a program linked with the static library also needs (rustc --print native-static-libs).
static_deps="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
pc_head="prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include
"
cat >"$prefix/lib/pkgconfig/ringlog.pc" <<PC
${pc_head}
Name: ringlog
Description: Log from many processes into one file through a shared-memory ring (C API)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lringlog
Libs.private: $static_deps
PC
cat >"$prefix/lib/pkgconfig/ringlog-static.pc" <<PC
${pc_head}
Name: ringlog-static
Description: libringlog linked statically into the program
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libringlog.a $static_deps
PC
echo "installed libringlog $version ($soname) under $prefix (pkg-config: ringlog, ringlog-static)"
