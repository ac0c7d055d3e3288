#pragma once
// Code zips that nodes share, named by their SHA-256: a node that deploys puts the zip here
// before the record naming it is written, and a node that learns of the record gets the zip
// and unpacks it into its own code directory (CodeStore, a cache then). On a single host
// there is none: the code directory is the only copy (postgres_code_blob_store.hpp).
//
// Calls block (a database round trip): blocking and bulk pools, never the loop.
#include <optional>
#include <string>
#include <string_view>

namespace funcd {

class CodeBlobStore {
public:
    virtual ~CodeBlobStore() = default;

    virtual bool has(const std::string& sha256) = 0;
    // Stores `zip` under its hash; a zip already there is left as it is.
    virtual void put(const std::string& sha256, std::string_view zip) = 0;
    // The whole zip, or nullopt when there is none under that hash.
    virtual std::optional<std::string> get(const std::string& sha256) = 0;
};

}  // namespace funcd
