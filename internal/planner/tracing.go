package planner

import "go.opentelemetry.io/otel/attribute"

// The planner's spans, children of the span in the context Make is given
// (none when it holds none): reading the changes since the base, and
// computing the jobs' input digests.
const (
	SpanDiff    = "deltaci.plan.diff"
	SpanDigests = "deltaci.plan.digests"
)

const (
	attrChangedFiles = attribute.Key("deltaci.plan.changed_files")
	attrHasBase      = attribute.Key("deltaci.plan.has_base")
	attrJobs         = attribute.Key("deltaci.plan.jobs")
)
