#include "services/experiment/experiment_service.h"

#include "common/rpc/call_context.h"
#include "services/experiment/handle.h"

namespace submarine::experiment {
namespace {

using rpc::CallInfo;
using rpc::Fill;

}  // namespace

grpc::Status ExperimentServiceImpl::CreateExperiment(grpc::ServerContext* ctx,
                                                     const v1::CreateExperimentRequest* req,
                                                     v1::Experiment* resp) {
  return Handle(ctx,
                [&](const CallInfo& call) { return Fill(manager_->Create(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::GetExperiment(grpc::ServerContext* ctx,
                                                  const v1::GetExperimentRequest* req,
                                                  v1::Experiment* resp) {
  return Handle(ctx,
                [&](const CallInfo& call) { return Fill(manager_->Get(req->name(), call), resp); });
}

grpc::Status ExperimentServiceImpl::ListExperiments(grpc::ServerContext* ctx,
                                                    const v1::ListExperimentsRequest* req,
                                                    v1::ListExperimentsResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) { return Fill(manager_->List(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::UpdateExperiment(grpc::ServerContext* ctx,
                                                     const v1::UpdateExperimentRequest* req,
                                                     v1::Experiment* resp) {
  return Handle(ctx,
                [&](const CallInfo& call) { return Fill(manager_->Update(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::DeleteExperiment(grpc::ServerContext* ctx,
                                                     const v1::DeleteExperimentRequest* req,
                                                     v1::DeleteExperimentResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) {
    return Fill(manager_->Delete(*req, call), resp->mutable_experiment());
  });
}

grpc::Status ExperimentServiceImpl::StopExperiment(grpc::ServerContext* ctx,
                                                   const v1::StopExperimentRequest* req,
                                                   v1::Experiment* resp) {
  return Handle(ctx, [&](const CallInfo& call) { return Fill(manager_->Stop(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::RetryExperiment(grpc::ServerContext* ctx,
                                                    const v1::RetryExperimentRequest* req,
                                                    v1::Experiment* resp) {
  return Handle(ctx, [&](const CallInfo& call) { return Fill(manager_->Retry(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::CloneExperiment(grpc::ServerContext* ctx,
                                                    const v1::CloneExperimentRequest* req,
                                                    v1::Experiment* resp) {
  return Handle(ctx, [&](const CallInfo& call) { return Fill(manager_->Clone(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::GetExperimentLogs(grpc::ServerContext* ctx,
                                                      const v1::GetExperimentLogsRequest* req,
                                                      v1::ExperimentLogs* resp) {
  return Handle(ctx,
                [&](const CallInfo& call) { return Fill(manager_->GetLogs(*req, call), resp); });
}

grpc::Status ExperimentServiceImpl::StreamExperimentLogs(
    grpc::ServerContext* ctx, const v1::StreamExperimentLogsRequest* req,
    grpc::ServerWriter<v1::ExperimentLogs>* writer) {
  return Handle(ctx, [&](const CallInfo& call) {
    return manager_->StreamLogs(
        *req, call, [&](const v1::ExperimentLogs& logs) { return writer->Write(logs); },
        [&] { return ctx->IsCancelled(); });
  });
}

grpc::Status ExperimentServiceImpl::DownloadExperimentLog(
    grpc::ServerContext* ctx, const v1::StreamExperimentLogsRequest* req,
    grpc::ServerWriter<google::api::HttpBody>* writer) {
  return Handle(ctx, [&](const CallInfo& call) {
    google::api::HttpBody chunk;
    chunk.set_content_type("text/plain; charset=utf-8");
    return manager_->StreamLogs(
        *req, call,
        [&](const v1::ExperimentLogs& logs) {
          chunk.set_data(logs.data());
          return writer->Write(chunk);
        },
        [&] { return ctx->IsCancelled(); });
  });
}

}  // namespace submarine::experiment
