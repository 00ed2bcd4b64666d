#pragma once
// The Apache Submarine 0.8 compatible face of the experiment service (/api/v1/experiment): the
// experiments of project "default" in Apache Submarine's shapes — envelope, experiment ids
// (experiment-<ms>-<nnnn>), field names, statuses and messages — translated to and from
// ExperimentManager. What differs, on purpose:
//   - cmd runs under /bin/sh -c instead of being split on single spaces (quoting works);
//   - a role's envVars are merged over meta.envVars instead of replacing them;
//   - the status of a stopped experiment is "Failed" (0.8 has no Killed), and a failed one
//     reaches "Failed" (0.8 could not report it reliably);
//   - PATCH changes the spec of an experiment that has not been admitted yet, 409 after;
//   - validation errors are 400 "Invalid experiment spec. <field>: <problem>" (0.8: 500).

#include "services/experiment/experiment_manager.h"
#include "submarine/experiment/v1/submarine_v1.grpc.pb.h"

namespace submarine::experiment {

class SubmarineExperimentApiImpl final : public v1::SubmarineExperimentApi::Service {
 public:
  explicit SubmarineExperimentApiImpl(ExperimentManager* manager) : manager_(manager) {}

  using Response = submarine::common::v1::SubmarineV1Response;
  grpc::Status Ping(grpc::ServerContext* ctx, const v1::SubmarinePingRequest* req,
                    Response* resp) override;
  grpc::Status CreateExperiment(grpc::ServerContext* ctx,
                                const v1::SubmarineCreateExperimentRequest* req,
                                Response* resp) override;
  grpc::Status ListExperiments(grpc::ServerContext* ctx,
                               const v1::SubmarineListExperimentsRequest* req,
                               Response* resp) override;
  grpc::Status GetExperiment(grpc::ServerContext* ctx, const v1::SubmarineExperimentIdRequest* req,
                             Response* resp) override;
  grpc::Status PatchExperiment(grpc::ServerContext* ctx,
                               const v1::SubmarinePatchExperimentRequest* req,
                               Response* resp) override;
  grpc::Status DeleteExperiment(grpc::ServerContext* ctx,
                                const v1::SubmarineExperimentIdRequest* req,
                                Response* resp) override;
  grpc::Status ListLogs(grpc::ServerContext* ctx, const v1::SubmarineListExperimentsRequest* req,
                        Response* resp) override;
  grpc::Status GetLog(grpc::ServerContext* ctx, const v1::SubmarineExperimentIdRequest* req,
                      Response* resp) override;

 private:
  ExperimentManager* manager_;
};

// The ExperimentSpec of a Submarine v1 spec; INVALID_ARGUMENT naming the field for what Submarine
// accepted but Submarine here refuses (git passwords in the spec, the HDFS pre-handler).
absl::StatusOr<v1::ExperimentSpec> FromSubmarineSpec(const v1::SubmarineExperimentSpec& spec);

}  // namespace submarine::experiment
