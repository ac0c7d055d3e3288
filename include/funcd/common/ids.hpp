#pragma once
#include <string>

namespace funcd {

// A random (version 4) UUID in its canonical lower-case text form.
std::string new_uuid();

// `bytes` random bytes from the OS CSPRNG, hex encoded.
std::string random_hex(std::size_t bytes);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace funcd
