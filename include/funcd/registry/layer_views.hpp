#pragma once
// The merged view of a function's layers that its workers see at /opt: each layer's files
// in list order, a later layer's file replacing an earlier one's at the same path (Lambda:
// "the order in which you add the layers is the order in which Lambda merges the layer
// content"). Built once per distinct list of layers under DATA_DIR/opt/<key>/, from the
// unpacked layer trees of the code store by hard links, read-only, and shared by every
// version and function with the same list.
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "funcd/registry/code_store.hpp"
#include "funcd/registry/function_config.hpp"

namespace funcd {

class LayerViews {
public:
    LayerViews(std::filesystem::path root, CodeStore& code);

    // Where `layers` are merged; empty for no layers. Pure.
    std::filesystem::path path_for(const std::vector<LayerRef>& layers) const;
    // The same, built if it does not exist yet. Thread-safe. Throws std::runtime_error
    // when the merge fails (nothing is left behind).
    std::filesystem::path build(const std::vector<LayerRef>& layers);

    // Removes every view whose directory name is not in `in_use` (keys, i.e. file names).
    void collect_garbage(const std::set<std::string>& in_use);

private:
    std::filesystem::path root_;
    CodeStore& code_;
    std::mutex mutex_;  // one build or collection at a time
};

// Merges `sources` into `dest` (which must not exist), later sources winning, linking
// files rather than copying them where the file system allows. Exposed for tests.
void merge_trees(const std::vector<std::filesystem::path>& sources, const std::filesystem::path& dest);

}  // namespace funcd
