package planner

import (
	"context"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/pipeline"
)

// PipelineAt returns an Options.BasePipelineAt that reads the pipeline file
// of the repository at dir at a commit: nil when the commit predates the
// file or its pipeline does not parse (a broken base explains nothing).
func PipelineAt(dir string) func(ctx context.Context, commit string) (*core.Pipeline, error) {
	return func(ctx context.Context, commit string) (*core.Pipeline, error) {
		b, err := gitx.FileAt(ctx, dir, commit, pipeline.FileName, pipeline.MaxFileSize)
		if core.KindOf(err) == core.KindNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		p, err := pipeline.Parse(pipeline.FileName+"@"+commit[:min(12, len(commit))], b)
		if err != nil {
			return nil, nil
		}
		return p, nil
	}
}
