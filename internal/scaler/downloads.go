package scaler

import (
	"context"
	"fmt"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// RunnerApplicationsLister is the GitHub call behind RunnerDownloads.
type RunnerApplicationsLister interface {
	ListRunnerApplications(ctx context.Context, s ghapi.Scope) ([]*ghapi.RunnerApplication, error)
}

var _ RunnerApplicationsLister = (*ghapi.Client)(nil)

// RunnerDownloads adapts the GitHub client's downloads endpoint at scope to
// what provisioners that install the runner application need.
func RunnerDownloads(gh RunnerApplicationsLister, scope ghapi.Scope) provisioner.RunnerDownloads {
	return runnerDownloads{gh: gh, scope: scope}
}

type runnerDownloads struct {
	gh    RunnerApplicationsLister
	scope ghapi.Scope
}

func (d runnerDownloads) RunnerApplications(ctx context.Context) ([]provisioner.RunnerApplication, error) {
	apps, err := d.gh.ListRunnerApplications(ctx, d.scope)
	if err != nil {
		return nil, fmt.Errorf("runner application downloads: %w", err)
	}
	out := make([]provisioner.RunnerApplication, 0, len(apps))
	for _, a := range apps {
		out = append(out, provisioner.RunnerApplication{
			OS: a.GetOS(), Architecture: a.GetArchitecture(), DownloadURL: a.GetDownloadURL(),
			Filename: a.GetFilename(), SHA256: a.GetSHA256Checksum(),
		})
	}
	return out, nil
}
