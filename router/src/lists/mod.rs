//! Filter list sources: local files and HTTP(S) URLs, fetched with
//! conditional requests, validated, and kept on disk as the last good copy.
