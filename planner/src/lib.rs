//! The planner: from evaluated definitions to a typed model, the stage/service graph, content
//! hashing of build contexts and the plan with its diff. (Built under the planner issue.)
