#pragma once
// The file trigger's event: a completed file becomes the notification Amazon S3 sends a
// function for a new object, so handlers written for S3 uploads (read
// Records[0].s3.bucket.name and .object.key, URL-decode the key) run as they are. The watched
// directory plays the bucket, the path below it the key.
//
// References: Amazon S3 User Guide, "Event message structure" (version 2.1 of the record),
// and the Lambda Developer Guide's S3 example event ("Process Amazon S3 event notifications
// with Lambda").
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "funcd/triggers/file_watcher.hpp"

namespace funcd {

// {"Records": [one record]} for `e`: eventVersion "2.1", eventSource "aws:s3",
// eventName "ObjectCreated:Put", eventTime = e.time, s3.configurationId = the trigger's name,
// bucket = the directory, object = {key (URL-encoded), size, eTag, sequencer}. Identities
// are "funcd" and the source address 127.0.0.1: inotify does not say who wrote a file.
// Every string in it is valid UTF-8, so the event always serialises.
nlohmann::json make_s3_event(const FileEvent& e, const std::string& trigger_name, const std::string& etag,
                             std::string_view region = "us-east-1");

// Lower-case hex MD5 of a file's content, read in chunks: the ETag S3 gives an object uploaded
// in one part. Reads the whole file, so call it on the blocking pool. Throws std::system_error
// (with the path) when the file cannot be read, or ENOTSUP when OpenSSL offers no MD5 (FIPS mode).
std::string file_etag(const std::filesystem::path& file);

// An object key as S3 writes it into notifications: form-URL-encoded, so a space is '+',
// letters, digits, '/', '-', '_', '.' and '*' stay, and every other byte is %XX.
std::string s3_encode_key(std::string_view key);

// The bucket a directory plays: its last path element ("/srv/uploads/" -> "uploads").
std::string s3_bucket_name(const std::filesystem::path& directory);

// object.sequencer for an event at `t`: nanoseconds since the epoch as 18 upper-case hex
// digits. Fixed width, so comparing two as strings orders them, as S3's docs advise.
std::string s3_sequencer(std::chrono::system_clock::time_point t);

}  // namespace funcd
