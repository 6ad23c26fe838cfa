#include "ingress_http/http_test_util.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "fakes/fake_function.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/text_format.h"
#include "test/ingress_http/http_test.pb.h"

namespace massa::http_testing {
namespace {

namespace pb = google::protobuf;

constexpr int kHttpOption = 72295728;

const pb::FileDescriptor& TestFile() { return *massa::http_test::Message::descriptor()->file(); }

std::string Qualified(const std::string& type) {
  return type.find('.') == std::string::npos ? absl::StrCat(".massa.http_test.", type)
                                             : absl::StrCat(".", type);
}

ServiceSpec Action(const std::string& name) {
  ServiceSpec service;
  service.name = name;
  service.kind = EntityKind::kAction;
  return service;
}

}  // namespace

std::unique_ptr<Catalog> CatalogOf(const std::vector<std::string>& services) {
  FunctionSpec spec;
  spec.descriptor_set = testing::DescriptorSetOf(TestFile());
  for (const std::string& name : services) spec.services.push_back(Action(name));
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(std::move(spec));
  if (!catalog.ok()) {
    std::cerr << "CatalogOf: " << catalog.status() << "\n";
    std::abort();
  }
  return *std::move(catalog);
}

absl::StatusOr<std::unique_ptr<Catalog>> CatalogWithProbe(const std::string& rule_text,
                                                          const std::vector<std::string>& services,
                                                          const std::string& request_type,
                                                          const std::string& response_type,
                                                          RuleEncoding encoding) {
  pb::FileDescriptorSet set;
  if (!set.ParseFromString(testing::DescriptorSetOf(TestFile()))) {
    return absl::InternalError("the test descriptor set does not parse");
  }
  pb::FileDescriptorProto* probe = set.add_file();
  probe->set_name("test/ingress_http/probe.proto");
  probe->set_package("massa.http_test");
  probe->set_syntax("proto3");
  probe->add_dependency(TestFile().name());
  probe->add_dependency("google/api/annotations.proto");
  pb::MethodDescriptorProto* method = probe->add_service()->add_method();
  probe->mutable_service(0)->set_name("Probe");
  method->set_name("Call");
  method->set_input_type(Qualified(request_type));
  method->set_output_type(Qualified(response_type));
  if (!rule_text.empty()) {
    google::api::HttpRule rule;
    if (!pb::TextFormat::ParseFromString(rule_text, &rule)) {
      return absl::InvalidArgumentError(absl::StrCat("bad rule text: ", rule_text));
    }
    if (encoding == RuleEncoding::kExtension) {
      *method->mutable_options()->MutableExtension(google::api::http) = rule;
    } else {
      method->mutable_options()
          ->GetReflection()
          ->MutableUnknownFields(method->mutable_options())
          ->AddLengthDelimited(kHttpOption, rule.SerializeAsString());
    }
  }

  FunctionSpec spec;
  spec.descriptor_set = set.SerializeAsString();
  for (const std::string& name : services) spec.services.push_back(Action(name));
  spec.services.push_back(Action(kProbe));
  return Catalog::Build(std::move(spec));
}

}  // namespace massa::http_testing
