// File: ingress/grpc/reflection.h
//
// gRPC server reflection (grpc.reflection.v1 and v1alpha) answered from the descriptors the
// user function sent at discovery, so that grpcurl, grpcui or Postman can list and call the
// services Massa serves. gRPC's own reflection library cannot do this: it only sees the
// descriptors compiled into the binary, and Massa discovers the user's services at run time.
//
// Answers:
//   list_services                  the catalog's services, then `own_services`
//   file_by_filename               the file, then every file it imports (transitively)
//   file_containing_symbol         the same for the file defining a fully qualified service,
//                                  method ("pkg.Svc.Method"), message, field, enum, enum
//                                  value, oneof or extension
//   file_containing_extension      the same for the file defining the extension
//   all_extension_numbers_of_type  the extension numbers of a message type
// Each file appears once per response, the requested one first. Unknown files, symbols,
// types and extensions get an error_response with NOT_FOUND; a request with none of the
// above set gets UNIMPLEMENTED.
//
// Names are looked up in the catalog's descriptors first, then among Massa's own services
// (`own_services`, resolved in the descriptors compiled into the binary); of the latter only
// the files defining those services and their imports are visible.
//
// Example:
//   std::unique_ptr<rpc::LoopService> v1 = NewReflectionService(catalog, ReflectionVersion::kV1);
//   builder.RegisterService(v1->service());
//   ...
//   v1->Start(loop);   // once the server is built
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace massa {

namespace rpc {
class LoopService;
}  // namespace rpc

class Catalog;

enum class ReflectionVersion {
  kV1,       // grpc.reflection.v1.ServerReflection
  kV1Alpha,  // grpc.reflection.v1alpha.ServerReflection (what most clients still ask first)
};

struct ReflectionOptions {
  // Massa's own services served beside the user's, listed by list_services after them. Names
  // that the binary has no descriptors for are left out.
  std::vector<std::string> own_services = {
      "massa.admin.v1.Admin",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
  };
};

// A service for the given protocol version, run on a completion-queue loop
// (rpc/loop_service.h); it must outlive the server, as every registered service must. It reads
// `catalog`, which must outlive it; it serves any number of concurrent streams.
std::unique_ptr<rpc::LoopService> NewReflectionService(const Catalog& catalog,
                                                    ReflectionVersion version,
                                                    ReflectionOptions options = {});

}  // namespace massa
