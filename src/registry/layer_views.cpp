#include "funcd/registry/layer_views.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "funcd/common/ids.hpp"
#include "funcd/registry/code_archive.hpp"
#include "funcd/registry/temporary_name.hpp"

namespace funcd {

namespace fs = std::filesystem;

namespace {

// Removes whatever is at `p` (file, link or tree) so that a later layer's entry can take its place.
void clear(const fs::path& p) {
    std::error_code ec;
    const auto st = fs::symlink_status(p, ec);
    if (ec || !fs::exists(st)) return;
    if (st.type() == fs::file_type::directory) {
        fs::remove_all(p, ec);
    } else {
        fs::remove(p, ec);
    }
    if (ec) throw std::runtime_error("cannot replace " + p.string() + ": " + ec.message());
}

void place_file(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::create_hard_link(from, to, ec);
    if (!ec) return;
    // Another file system (or a kernel that refuses links to files we do not own): copy.
    fs::copy_file(from, to, ec);
    if (ec) throw std::runtime_error("cannot place " + to.string() + ": " + ec.message());
}

}  // namespace

void merge_trees(const std::vector<fs::path>& sources, const fs::path& dest) {
    fs::create_directories(dest);
    for (const auto& source : sources) {
        std::error_code ec;
        for (fs::recursive_directory_iterator it(source, fs::directory_options::none, ec), end; !ec && it != end;
             it.increment(ec)) {
            const fs::path rel = fs::relative(it->path(), source);
            const fs::path target = dest / rel;
            std::error_code sec;
            const auto type = it->symlink_status(sec).type();
            if (type == fs::file_type::directory) {
                const auto existing = fs::symlink_status(target, sec);
                if (fs::exists(existing) && existing.type() != fs::file_type::directory) clear(target);
                if (!fs::exists(existing) || existing.type() != fs::file_type::directory) fs::create_directory(target);
                continue;
            }
            clear(target);
            if (type == fs::file_type::symlink) {
                fs::copy_symlink(it->path(), target, sec);
                if (sec) throw std::runtime_error("cannot place " + target.string() + ": " + sec.message());
            } else if (type == fs::file_type::regular) {
                place_file(it->path(), target);
            }
            // Nothing else can be in an unpacked tree (code_archive refuses it).
        }
        if (ec) throw std::runtime_error("cannot read layer " + source.string() + ": " + ec.message());
    }
    // Read-only like the layers themselves: directories 0555.
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dest, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code sec;
        if (it->symlink_status(sec).type() == fs::file_type::directory) ::chmod(it->path().c_str(), 0555);
    }
    ::chmod(dest.c_str(), 0555);
}

LayerViews::LayerViews(fs::path root, CodeStore& code) : root_(std::move(root)), code_(code) {
    fs::create_directories(root_);
}

fs::path LayerViews::path_for(const std::vector<LayerRef>& layers) const {
    if (layers.empty()) return {};
    std::string key;
    for (const auto& l : layers) key += l.code_sha256 + "\n";
    return root_ / sha256_hex(key);
}

fs::path LayerViews::build(const std::vector<LayerRef>& layers) {
    fs::path view = path_for(layers);
    if (view.empty()) return view;
    std::lock_guard lock(mutex_);
    std::error_code ec;
    if (fs::is_directory(view, ec)) return view;
    std::vector<fs::path> sources;
    for (const auto& l : layers) sources.push_back(code_.dir_for(l.code_sha256));
    const fs::path tmp = root_ / temporary_name();
    try {
        merge_trees(sources, tmp);
    } catch (...) {
        remove_readonly_tree(tmp);
        throw;
    }
    if (std::rename(tmp.c_str(), view.c_str()) != 0) {
        const int err = errno;
        remove_readonly_tree(tmp);
        if ((err == EEXIST || err == ENOTEMPTY) && fs::is_directory(view, ec)) return view;
        throw std::runtime_error("cannot store the layer view " + view.string() + ": " + std::strerror(err));
    }
    spdlog::info("layers: merged {} layers into {}", layers.size(), view.filename().string());
    return view;
}

void LayerViews::collect_garbage(const std::set<std::string>& in_use) {
    std::lock_guard lock(mutex_);
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const auto& entry : fs::directory_iterator(root_, ec))
        if (!in_use.count(entry.path().filename().string())) doomed.push_back(entry.path());
    if (ec) spdlog::warn("cannot list {}: {}", root_.string(), ec.message());
    for (const auto& p : doomed) {
        spdlog::info("layers: removing unused view {}", p.filename().string());
        remove_readonly_tree(p);
    }
}

}  // namespace funcd
