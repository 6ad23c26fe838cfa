# gRPC server reflection and health checking, registered beside the user's services by the
# ingress (included from this directory's CMakeLists.txt).
massa_add_library(massa_ingress_grpc_services
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/health.cc
    ${CMAKE_CURRENT_LIST_DIR}/reflection.cc
  DEPS
    massa_entity
    massa_proto
    massa_rpc
    gRPC::grpc++
    absl::flat_hash_map
    absl::flat_hash_set
    absl::status
    absl::statusor
    absl::strings
    absl::synchronization)
