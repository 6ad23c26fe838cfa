// libpq, loaded when a PostgreSQL store is opened rather than linked: massa started with the
// embedded store (RocksDB, the default) then maps neither libpq nor what it pulls in (TLS,
// Kerberos, LDAP), several megabytes of resident memory in a sidecar that idles most of the
// time. Internal to the PostgreSQL store: connection.cc calls libpq only through Pq().
#pragma once

#include "absl/status/status.h"
#include "libpq-fe.h"

namespace massa::store::postgres {

// The libpq functions Massa calls, with libpq's own signatures.
struct Libpq {
#define MASSA_LIBPQ_FUNCTION(name) decltype(&::name) name = nullptr;
#include "store/postgres/libpq_functions.inc"
#undef MASSA_LIBPQ_FUNCTION
};

// Loads libpq (libpq.so.5) once; later calls return the first outcome. Thread-safe.
// Errors: FAILED_PRECONDITION naming the library and the package that provides it, when it
// cannot be loaded or lacks a function (a libpq older than 14, without pipeline mode).
absl::Status LoadLibpq();

// The loaded functions. LoadLibpq must have succeeded (checked).
const Libpq& Pq();

}  // namespace massa::store::postgres
