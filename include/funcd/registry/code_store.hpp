#pragma once
// Code, content-addressed on disk: DATA_DIR/code/<sha256 of the zip>/, unpacked once,
// read-only afterwards, shared by every version (and layer) that uploads the same bytes,
// and the zip itself beside it, DATA_DIR/code/<sha256>.zip, so that what was uploaded can
// be handed back byte for byte (Lambda's GetFunction Code.Location).
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace funcd {

struct StoredCode {
    std::string sha256;
    std::int64_t size = 0;
    std::filesystem::path dir;
    bool created = false;  // this put unpacked it (it was not stored before)
};

class CodeStore {
public:
    explicit CodeStore(std::filesystem::path root);

    // Unpacks `zip` unless its content is already stored. Throws ApiError(400) for a bad archive.
    StoredCode put(std::string_view zip);
    // Removes a tree put() just created that ended up unused (its deploy failed).
    void discard(const StoredCode& code);

    std::filesystem::path dir_for(const std::string& sha256) const { return root_ / sha256; }
    // The uploaded zip; may be missing for code stored before zips were kept.
    std::filesystem::path zip_for(const std::string& sha256) const { return root_ / (sha256 + ".zip"); }

    // Removes every stored tree and zip whose hash is not in `in_use`, and leftovers of
    // interrupted unpacks.
    void collect_garbage(const std::set<std::string>& in_use);

private:
    std::filesystem::path root_;
    std::mutex mutex_;  // serialises put/collect_garbage so a tree is never removed while being added
};

}  // namespace funcd
