# Installing massa and building its Debian packages (CPack).
#
#   cmake --install build --prefix P     massa, the SDK (CMake package MassaSdk, pkg-config
#                                         massa-sdk), its .proto files, a systemd unit and an
#                                         example configuration under P
#   scripts/package.sh                    dist/massa_<version>_amd64.deb (the sidecar: binary,
#                                         systemd unit, /etc/massa/massa.yaml) and
#                                         dist/massa-dev_<version>_amd64.deb (the SDK)
#
# Configured with CMAKE_INSTALL_PREFIX=/usr (as scripts/package.sh does) the configuration goes
# to /etc/massa and the unit to /lib/systemd/system; with any other prefix both stay under it.
include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(MASSA_CONFIG_DIR /etc/massa)
  set(MASSA_UNIT_DIR /lib/systemd/system)
else()
  set(MASSA_CONFIG_DIR ${CMAKE_INSTALL_SYSCONFDIR}/massa)
  set(MASSA_UNIT_DIR ${CMAKE_INSTALL_LIBDIR}/systemd/system)
endif()
if(IS_ABSOLUTE ${MASSA_CONFIG_DIR})
  set(MASSA_CONFIG_DIR_FULL ${MASSA_CONFIG_DIR})
else()
  set(MASSA_CONFIG_DIR_FULL ${CMAKE_INSTALL_PREFIX}/${MASSA_CONFIG_DIR})
endif()

install(TARGETS massa RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
configure_file(${PROJECT_SOURCE_DIR}/deploy/debian/massa.service.in
               ${PROJECT_BINARY_DIR}/deploy/massa.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/deploy/massa.service
        DESTINATION ${MASSA_UNIT_DIR} COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/debian/massa.yaml
        DESTINATION ${MASSA_CONFIG_DIR} COMPONENT runtime)

# Install only what was built (scripts/package.sh builds just the installed targets).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME massa)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Massa")
set(CPACK_PACKAGE_CONTACT "Massa developers <dev@massa.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Runtime for stateful serverless functions (sidecar)")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)  # the absolute /etc and /lib paths above
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME massa)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)  # massa is static but for glibc
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "adduser")
# libpq is loaded only for a PostgreSQL store.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "libpq5")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/deploy/debian/postinst;${PROJECT_SOURCE_DIR}/deploy/debian/conffiles")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "Massa serves a function's protobuf API over gRPC and HTTP/JSON, keeps its entities' state durable and calls the function with it.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME massa-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libgrpc++-dev, libprotobuf-dev, protobuf-compiler, libabsl-dev, cmake (>= 3.20), g++ (>= 4:12)")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "massa (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "The C++ SDK for Massa functions: headers, static libraries, .proto files, a CMake package (find_package(MassaSdk)) and pkg-config file.")
include(CPack)
