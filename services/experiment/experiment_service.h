#pragma once
// gRPC adapter of the experiment service (ExperimentService, the AIP face). It translates protos
// and statuses around ExperimentManager and never throws.

#include "services/experiment/experiment_manager.h"
#include "submarine/experiment/v1/experiment.grpc.pb.h"

namespace submarine::experiment {

class ExperimentServiceImpl final : public v1::ExperimentService::Service {
 public:
  explicit ExperimentServiceImpl(ExperimentManager* manager) : manager_(manager) {}

  grpc::Status CreateExperiment(grpc::ServerContext* ctx, const v1::CreateExperimentRequest* req,
                                v1::Experiment* resp) override;
  grpc::Status GetExperiment(grpc::ServerContext* ctx, const v1::GetExperimentRequest* req,
                             v1::Experiment* resp) override;
  grpc::Status ListExperiments(grpc::ServerContext* ctx, const v1::ListExperimentsRequest* req,
                               v1::ListExperimentsResponse* resp) override;
  grpc::Status UpdateExperiment(grpc::ServerContext* ctx, const v1::UpdateExperimentRequest* req,
                                v1::Experiment* resp) override;
  grpc::Status DeleteExperiment(grpc::ServerContext* ctx, const v1::DeleteExperimentRequest* req,
                                v1::DeleteExperimentResponse* resp) override;
  grpc::Status StopExperiment(grpc::ServerContext* ctx, const v1::StopExperimentRequest* req,
                              v1::Experiment* resp) override;
  grpc::Status RetryExperiment(grpc::ServerContext* ctx, const v1::RetryExperimentRequest* req,
                               v1::Experiment* resp) override;
  grpc::Status CloneExperiment(grpc::ServerContext* ctx, const v1::CloneExperimentRequest* req,
                               v1::Experiment* resp) override;
  grpc::Status GetExperimentLogs(grpc::ServerContext* ctx, const v1::GetExperimentLogsRequest* req,
                                 v1::ExperimentLogs* resp) override;
  grpc::Status DownloadExperimentLog(grpc::ServerContext* ctx,
                                     const v1::StreamExperimentLogsRequest* req,
                                     grpc::ServerWriter<google::api::HttpBody>* writer) override;
  grpc::Status StreamExperimentLogs(grpc::ServerContext* ctx,
                                    const v1::StreamExperimentLogsRequest* req,
                                    grpc::ServerWriter<v1::ExperimentLogs>* writer) override;

 private:
  ExperimentManager* manager_;
};

}  // namespace submarine::experiment
