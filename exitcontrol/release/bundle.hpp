// A release bundle: one ustar archive (tar.hpp) holding the signed manifest and the released
// files, for the receiving organisation to check on its own with the export signing public key.
//
// Members, in order: manifest.json (manifest.hpp), manifest.sig (hex Ed25519 signature over
// manifest.json's bytes, newline), export-signing.pub (hex public key, newline), then every
// file of the manifest in its order, each exactly the bytes the manifest hashes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "exitcontrol/release/manifest.hpp"
#include "exitcontrol/release/tar.hpp"

namespace enclave::exitcontrol::release {

// Writes the bundle to sink, file i of the manifest read from sources[i] in 64 KiB pieces
// (opened without following a symbolic link; a regular file) and hashed as it streams. Members
// get mtime (seconds since the Unix epoch). Errors: kInvalidArgument (not one source per file),
// kCorrupt naming the file when its size or SHA-256 is not the manifest's (both values), the
// source's open or read errors, the sink's errors. After an error the sink has received part of
// a bundle: the caller discards it (a SealedWriter that is not finished leaves nothing).
Status write_bundle(const SignedManifest& manifest,
                    const std::vector<std::filesystem::path>& sources, std::int64_t mtime,
                    const ByteSink& sink);

// Checks a bundle against the export signing public key the organisation holds (32 raw bytes):
// the archive reads (read_tar), manifest.sig verifies over manifest.json under that key (and
// export-signing.pub and the manifest's signer are that key), the manifest parses, and the
// members are exactly the manifest's files plus the three of the bundle, each with the size and
// SHA-256 the manifest gives. Returns the manifest. kCorrupt naming what failed (the member and
// both hashes); kInvalidArgument for a public key that is not 32 bytes.
Expected<Manifest> verify_bundle(ByteSpan bundle, ByteSpan public_key);

// verify_bundle over a bundle file, mapped rather than read into memory; errors name the file.
// kNotFound, kInvalidArgument (not a regular file), kIo as the file allows.
Expected<Manifest> verify_bundle_file(const std::filesystem::path& bundle, ByteSpan public_key);

}  // namespace enclave::exitcontrol::release
