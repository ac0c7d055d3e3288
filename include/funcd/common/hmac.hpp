#pragma once
// HMAC-SHA256 for the daemon's own capabilities and derived keys (code download URLs, the
// invoke-only key pair). SigV4 keeps its own allocation-free chain on the invoke path.
#include <string>
#include <string_view>

namespace funcd {

// The 32-byte MAC, raw.
std::string hmac_sha256(std::string_view key, std::string_view data);

// Lower-case hex of `bytes`.
std::string to_hex(std::string_view bytes);

}  // namespace funcd
