#include "funcd/state/postgres_function_store.hpp"

#include <string>

namespace funcd {
namespace {

// What a write that found the function changed since its writer read it throws inside the
// transaction, to roll it back (the revision it took included).
struct ChangedSinceRead {};

// The size of one row of funcd_code_chunks: a zip of Lambda's largest (50 MB) is 50 rows,
// and no single value comes near PostgreSQL's 1 GB limit for a field.
constexpr std::size_t kCodeChunkBytes = 1 << 20;

std::int64_t take_revision(PgConnection& conn) {
    const PgRows r =
        conn.query("UPDATE funcd_revisions SET value = value + 1 WHERE scope = 'functions' RETURNING value");
    if (r.empty()) throw PgError("the state database has no revision counter (funcd_revisions)");
    return pg_int(r.at(0, "value"));
}

void notify_functions(PgConnection& conn) {
    conn.query("SELECT pg_notify($1, 'functions')", {std::string(kStateChannel)});
}

}  // namespace

PostgresFunctionStore::PostgresFunctionStore(std::string conninfo) : session_(std::move(conninfo)) {}

FunctionStoreChanges PostgresFunctionStore::changes_since(std::int64_t revision) {
    // One snapshot: the counter and the rows are of the same moment, and since writers commit
    // in the order of their revisions, nothing at or below the counter can appear later.
    return session_.transaction(
        [&](PgConnection& conn) {
            FunctionStoreChanges out;
            out.revision =
                pg_int(conn.query("SELECT value FROM funcd_revisions WHERE scope = 'functions'").at(0, "value"));
            const std::string since = std::to_string(revision);
            const PgRows functions =
                conn.query("SELECT name, doc, revision FROM funcd_functions WHERE revision > $1", {since});
            for (std::size_t i = 0; i < functions.rows.size(); ++i) {
                const auto& doc = functions.at(i, "doc");
                if (doc)
                    out.functions.push_back({*functions.at(i, "name"), *doc, pg_int(functions.at(i, "revision"))});
                else
                    out.deleted.push_back(*functions.at(i, "name"));
            }
            const PgRows layers = conn.query(
                "SELECT name, version, doc, revision FROM funcd_layer_versions WHERE revision > $1", {since});
            for (std::size_t i = 0; i < layers.rows.size(); ++i)
                out.layers.push_back({*layers.at(i, "name"), pg_int(layers.at(i, "version")), *layers.at(i, "doc"),
                                      pg_int(layers.at(i, "revision"))});
            return out;
        },
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

std::optional<std::int64_t> PostgresFunctionStore::put_function(std::string_view name,
                                                                const std::optional<std::string>& doc,
                                                                std::int64_t expected) {
    try {
        return session_.transaction([&](PgConnection& conn) {
            const std::int64_t revision = take_revision(conn);
            const PgRows found =
                conn.query("SELECT revision, doc IS NULL AS deleted FROM funcd_functions WHERE name = $1",
                           {std::string(name)});
            const std::int64_t current =
                found.empty() || found.at(0, "deleted") == "t" ? 0 : pg_int(found.at(0, "revision"));
            if (current != expected || (!doc && current == 0)) throw ChangedSinceRead{};
            conn.query(
                "INSERT INTO funcd_functions (name, doc, revision) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
                {std::string(name), doc, std::to_string(revision)});
            notify_functions(conn);
            return std::optional<std::int64_t>(revision);
        });
    } catch (const ChangedSinceRead&) {
        return std::nullopt;
    }
}

StoredLayer PostgresFunctionStore::add_layer(std::string_view name,
                                             const std::function<std::string(std::int64_t version)>& doc_for) {
    return session_.transaction([&](PgConnection& conn) {
        StoredLayer l;
        l.name = std::string(name);
        l.revision = take_revision(conn);
        l.version = pg_int(conn.query("SELECT coalesce(max(version), 0) + 1 AS next FROM funcd_layer_versions "
                                      "WHERE name = $1",
                                      {l.name})
                               .at(0, "next"));
        l.doc = doc_for(l.version);
        conn.query("INSERT INTO funcd_layer_versions (name, version, doc, revision) VALUES ($1, $2, $3, $4)",
                   {l.name, std::to_string(l.version), l.doc, std::to_string(l.revision)});
        notify_functions(conn);
        return l;
    });
}

std::optional<std::int64_t> PostgresFunctionStore::put_layer(std::string_view name, std::int64_t version,
                                                             const std::string& doc) {
    try {
        return session_.transaction([&](PgConnection& conn) {
            const std::int64_t revision = take_revision(conn);
            const PgRows updated = conn.query(
                "UPDATE funcd_layer_versions SET doc = $3, revision = $4 WHERE name = $1 AND version = $2 "
                "RETURNING version",
                {std::string(name), std::to_string(version), doc, std::to_string(revision)});
            if (updated.empty()) throw ChangedSinceRead{};
            notify_functions(conn);
            return std::optional<std::int64_t>(revision);
        });
    } catch (const ChangedSinceRead&) {
        return std::nullopt;
    }
}

PostgresCodeBlobStore::PostgresCodeBlobStore(std::string conninfo) : session_(std::move(conninfo)) {}

// funcd_code.created_at is when the zip was last put or touched: what a collection's grace
// counts from.
bool PostgresCodeBlobStore::touch(const std::string& sha256) {
    return session_.run([&](PgConnection& conn) {
        return !conn.query("UPDATE funcd_code SET created_at = now() WHERE sha256 = $1 RETURNING sha256", {sha256})
                    .empty();
    });
}

std::size_t PostgresCodeBlobStore::collect(const std::set<std::string>& in_use, std::chrono::seconds grace) {
    const std::string age = std::to_string(grace.count());
    const PgRows old = session_.run([&](PgConnection& conn) {
        return conn.query("SELECT sha256 FROM funcd_code WHERE created_at < now() - make_interval(secs => $1)", {age});
    });
    std::size_t removed = 0;
    for (std::size_t i = 0; i < old.rows.size(); ++i) {
        const std::string sha = old.at(i, "sha256").value_or("");
        if (in_use.contains(sha)) continue;
        // One zip per transaction, its age checked again under the row's lock: a deploy that
        // touched or put it since keeps it (one that comes after finds it gone and puts it anew).
        removed += session_.transaction([&](PgConnection& conn) {
            if (conn.query("DELETE FROM funcd_code WHERE sha256 = $1 AND created_at < now() - make_interval(secs => $2) "
                           "RETURNING sha256",
                           {sha, age})
                    .empty())
                return 0;
            conn.query("DELETE FROM funcd_code_chunks WHERE sha256 = $1", {sha});
            return 1;
        });
    }
    return removed;
}

void PostgresCodeBlobStore::put(const std::string& sha256, std::string_view zip) {
    session_.transaction([&](PgConnection& conn) {
        if (!conn.query("SELECT 1 FROM funcd_code WHERE sha256 = $1", {sha256}).empty()) return;
        const std::size_t chunks = zip.empty() ? 1 : (zip.size() + kCodeChunkBytes - 1) / kCodeChunkBytes;
        for (std::size_t i = 0; i < chunks; ++i) {
            const std::string_view part = zip.substr(std::min(zip.size(), i * kCodeChunkBytes), kCodeChunkBytes);
            // Another node putting the same zip at once waits for this one's rows, then skips them.
            conn.query(
                "INSERT INTO funcd_code_chunks (sha256, chunk, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                {sha256, std::to_string(i), std::string(part)}, {false, false, true});
        }
        conn.query("INSERT INTO funcd_code (sha256, size, chunks) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                   {sha256, std::to_string(zip.size()), std::to_string(chunks)});
    });
}

std::optional<std::string> PostgresCodeBlobStore::get(const std::string& sha256) {
    return session_.transaction(
        [&](PgConnection& conn) -> std::optional<std::string> {
            const PgRows head = conn.query("SELECT size, chunks FROM funcd_code WHERE sha256 = $1", {sha256});
            if (head.empty()) return std::nullopt;
            const PgRows chunks =
                conn.query("SELECT data FROM funcd_code_chunks WHERE sha256 = $1 ORDER BY chunk", {sha256});
            if (static_cast<std::int64_t>(chunks.rows.size()) != pg_int(head.at(0, "chunks")))
                throw PgError("the code " + sha256 + " has " + std::to_string(chunks.rows.size()) + " of its " +
                              head.at(0, "chunks").value_or("?") + " chunks");
            std::string zip;
            zip.reserve(static_cast<std::size_t>(pg_int(head.at(0, "size"))));
            for (std::size_t i = 0; i < chunks.rows.size(); ++i) zip += pg_unescape_bytea(*chunks.at(i, "data"));
            return zip;
        },
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

}  // namespace funcd
