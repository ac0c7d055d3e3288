#pragma once
#include <string>

namespace funcd {

// Both draw from OpenSSL's CSPRNG (seeded by the OS) through a per-thread buffer, so
// the invoke path pays for a generator call once every few hundred ids. Thread-safe; a
// forked child never repeats its parent's bytes.

// A random (version 4) UUID in its canonical lower-case text form.
std::string new_uuid();

// `bytes` random bytes, hex encoded.
std::string random_hex(std::size_t bytes);

// A uniformly distributed number in [0, 1) (an alias's weighted routing).
double uniform_draw();

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace funcd
