#pragma once
// Code zips that nodes share, named by their SHA-256: a node that deploys puts the zip here
// before the record naming it is written, and a node that learns of the record gets the zip
// and unpacks it into its own code directory (CodeStore, a cache then). On a single host
// there is none: the code directory is the only copy (PostgresCodeBlobStore in
// postgres_function_store.hpp).
//
// A zip no function version or layer names any more is removed by a collection, but only
// kSharedCodeGrace after it was last put: a deploy puts (or touches) its zip before it writes
// the record naming it, and a node's view of the records may be a moment behind.
//
// Calls block (a database round trip): blocking and bulk pools, never the loop.
#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace funcd {

// Far longer than a deploy takes from its zip to its record, and than a node's view of the
// records lags while it can reach the database (a second: kStatePollInterval).
inline constexpr std::chrono::hours kSharedCodeGrace{1};

class CodeBlobStore {
public:
    virtual ~CodeBlobStore() = default;

    // Whether the zip is there; when it is, it counts as put now (a collection spares it
    // for its grace).
    virtual bool touch(const std::string& sha256) = 0;
    // Stores `zip` under its hash; a zip already there is left as it is.
    virtual void put(const std::string& sha256, std::string_view zip) = 0;
    // The whole zip, or nullopt when there is none under that hash.
    virtual std::optional<std::string> get(const std::string& sha256) = 0;
    // Removes the zips that `in_use` does not name and that were last put over `grace` ago;
    // returns how many.
    virtual std::size_t collect(const std::set<std::string>& in_use, std::chrono::seconds grace) = 0;
};

}  // namespace funcd
