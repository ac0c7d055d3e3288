#pragma once
// Safe unpacking of an uploaded zip. Untrusted input: every entry is checked before
// anything is written, and the totals are counted from the bytes actually written,
// not from the sizes the archive claims.
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "funcd/registry/function_config.hpp"

namespace funcd {

struct ArchiveLimits {
    std::uint64_t max_unpacked_bytes = limits::kMaxUnpackedBytes;
    std::size_t max_entries = limits::kMaxArchiveEntries;
};

struct UnpackStats {
    std::size_t entries = 0;
    std::uint64_t bytes = 0;
};

// Unpacks the zip in `zip` into `dest` (which must not exist yet; it is created).
// Rejects with ApiError(400, "InvalidParameterValueException", <what and which entry>):
// a corrupt or non-zip archive, absolute paths, `..` components, symlinks whose target
// resolves outside the root, hard links, device/fifo/socket entries, more entries or
// bytes than `limits`. On any failure `dest` is removed entirely before throwing.
// File modes: the owner-execute bit from the archive is kept (so `bootstrap` stays
// executable); everything is made read-only (files 0444/0555, dirs 0555) once unpacked.
UnpackStats unpack_zip(std::string_view zip, const std::filesystem::path& dest,
                       const ArchiveLimits& limits = {});

// Removes a tree that unpack_zip made read-only.
void remove_readonly_tree(const std::filesystem::path& root);

}  // namespace funcd
