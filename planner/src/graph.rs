//! The graph of stages and services (petgraph): stages in order, each service in its stage, and
//! `dependsOn` edges, checked for unknown names, dependencies on later stages, and cycles.

use crate::error::{Diag, Result};
use crate::model::Environment;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use pipeline_lang::span::SourceMap;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Stage(String),
    Service(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// stage -> the next stage
    Next,
    /// stage -> a service in it
    Contains,
    /// service -> a service it depends on
    DependsOn,
}

/// The checked graph.
#[derive(Debug)]
pub struct Graph {
    pub graph: DiGraph<Node, Edge>,
    pub stages: Vec<NodeIndex>,
    /// Indexed like `Environment::services`.
    pub services: Vec<NodeIndex>,
}

impl Graph {
    /// Build and check the graph; `sources` gives errors their place in the user's files. Every
    /// bad `dependsOn` entry is reported (see [`crate::Error::All`]), then the first cycle.
    pub fn new(env: &Environment, sources: &SourceMap) -> Result<Graph> {
        let mut errors: Vec<crate::Error> = Vec::new();
        let mut graph = DiGraph::new();
        let stages: Vec<NodeIndex> = env.stages.iter().map(|s| graph.add_node(Node::Stage(s.clone()))).collect();
        for w in stages.windows(2) {
            graph.add_edge(w[0], w[1], Edge::Next);
        }
        let mut services = Vec::with_capacity(env.services.len());
        for s in &env.services {
            let n = graph.add_node(Node::Service(s.name.clone()));
            let stage = env.stage_index(&s.stage).unwrap_or(0);
            graph.add_edge(stages[stage], n, Edge::Contains);
            services.push(n);
        }
        for (i, s) in env.services.iter().enumerate() {
            let my_stage = env.stage_index(&s.stage).unwrap_or(0);
            for dep in &s.depends_on {
                let Some(j) = env.services.iter().position(|d| &d.name == dep) else {
                    let names = env.services.iter().map(|d| d.name.as_str());
                    let help = crate::error::suggest(dep, names, |all| format!("the services are: {all}"));
                    errors.push(
                        Diag::new(
                            "pipeline::plan::unknown_dependency",
                            format!("service `{}` depends on `{dep}`, which is not a service", s.name),
                        )
                        .at(sources, s.spans.depends_on, "unknown service")
                        .help(help)
                        .into(),
                    );
                    continue;
                };
                let d = &env.services[j];
                let dep_stage = env.stage_index(&d.stage).unwrap_or(0);
                if dep_stage > my_stage {
                    errors.push(
                        Diag::new(
                            "pipeline::plan::dependency_order",
                            format!(
                                "{} (stage {}) depends on {} (stage {}), which runs after it",
                                s.name, s.stage, d.name, d.stage
                            ),
                        )
                        .at(sources, s.spans.depends_on, "dependency on a later stage")
                        .also(sources, d.spans.stage.or(d.spans.name), format!("{} is placed here", d.name))
                        .help(format!(
                            "move `{}` to stage `{}` or earlier, or `{}` to `{}` or later",
                            d.name, s.stage, s.name, d.stage
                        ))
                        .into(),
                    );
                    continue;
                }
                if j == i {
                    errors.push(
                        Diag::new(
                            "pipeline::plan::dependency_cycle",
                            format!("service `{}` depends on itself", s.name),
                        )
                        .at(sources, s.spans.depends_on, "here")
                        .help("remove it from its own `dependsOn`")
                        .into(),
                    );
                    continue;
                }
                if !graph.edges_connecting(services[i], services[j]).any(|_| true) {
                    graph.add_edge(services[i], services[j], Edge::DependsOn);
                }
            }
        }
        let g = Graph { graph, stages, services };
        if let Some(cycle) = g.find_cycle() {
            let names: Vec<&str> = cycle.iter().map(|&i| env.services[i].name.as_str()).collect();
            let first = &env.services[cycle[0]];
            errors.push(
                Diag::new(
                    "pipeline::plan::dependency_cycle",
                    format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
                )
                .at(sources, first.spans.depends_on, "the cycle starts here")
                .help("a service cannot wait for a service that waits for it; remove one of these `dependsOn` entries")
                .into(),
            );
        }
        if !errors.is_empty() {
            return Err(crate::Error::all(errors));
        }
        Ok(g)
    }

    fn deps(&self, service: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .edges_directed(self.services[service], Direction::Outgoing)
            .filter(|e| *e.weight() == Edge::DependsOn)
            // Service nodes are added after the stage nodes, in service order.
            .map(|e| petgraph::visit::EdgeRef::target(&e).index() - self.stages.len())
    }

    /// The services a service depends on, as indexes into `Environment::services`, sorted.
    pub fn dependencies(&self, service: usize) -> Vec<usize> {
        let mut d: Vec<usize> = self.deps(service).collect();
        d.sort_unstable();
        d
    }

    /// The first cycle in `dependsOn` order (by service name), as service indexes.
    fn find_cycle(&self) -> Option<Vec<usize>> {
        // Colours: 0 unvisited, 1 on the stack, 2 done.
        let n = self.services.len();
        let mut colour = vec![0u8; n];
        let mut stack: Vec<usize> = Vec::new();
        fn visit(g: &Graph, v: usize, colour: &mut [u8], stack: &mut Vec<usize>) -> Option<Vec<usize>> {
            colour[v] = 1;
            stack.push(v);
            for w in g.dependencies(v) {
                if colour[w] == 1 {
                    let at = stack.iter().position(|&x| x == w).unwrap_or(0);
                    return Some(stack[at..].to_vec());
                }
                if colour[w] == 0
                    && let Some(c) = visit(g, w, colour, stack)
                {
                    return Some(c);
                }
            }
            stack.pop();
            colour[v] = 2;
            None
        }
        (0..n).find_map(|v| if colour[v] == 0 { visit(self, v, &mut colour, &mut stack) } else { None })
    }

    /// Render as text, Graphviz dot or Mermaid.
    pub fn render(&self, env: &Environment, format: GraphFormat) -> String {
        let mut out = String::new();
        let members = |stage: usize| {
            env.services.iter().enumerate().filter(move |(_, s)| env.stage_index(&s.stage) == Some(stage))
        };
        match format {
            GraphFormat::Text => {
                for (si, stage) in env.stages.iter().enumerate() {
                    let _ = writeln!(out, "{stage}");
                    for (i, s) in members(si) {
                        let deps: Vec<&str> =
                            self.dependencies(i).iter().map(|&d| env.services[d].name.as_str()).collect();
                        let _ = write!(out, "  {} ({})", s.name, s.kind.as_str());
                        if !deps.is_empty() {
                            let _ = write!(out, " -> {}", deps.join(", "));
                        }
                        out.push('\n');
                    }
                }
            }
            GraphFormat::Dot => {
                let _ = writeln!(
                    out,
                    "digraph {:?} {{\n  rankdir=LR;\n  node [shape=box];",
                    format!("{}/{}", env.project, env.name)
                );
                for (si, stage) in env.stages.iter().enumerate() {
                    let _ = writeln!(out, "  subgraph \"cluster_{si}\" {{\n    label={stage:?};");
                    for (_, s) in members(si) {
                        let _ =
                            writeln!(out, "    {:?} [label={:?}];", s.name, format!("{}\n{}", s.name, s.kind.as_str()));
                    }
                    out.push_str("  }\n");
                }
                for (i, s) in env.services.iter().enumerate() {
                    for d in self.dependencies(i) {
                        let _ = writeln!(out, "  {:?} -> {:?};", s.name, env.services[d].name);
                    }
                }
                out.push_str("}\n");
            }
            GraphFormat::Mermaid => {
                out.push_str("flowchart LR\n");
                for (si, stage) in env.stages.iter().enumerate() {
                    let _ = writeln!(out, "  subgraph stage{si}[\"{}\"]", stage.replace('"', "#quot;"));
                    for (_, s) in members(si) {
                        let _ = writeln!(out, "    {}[\"{} ({})\"]", mermaid_id(&s.name), s.name, s.kind.as_str());
                    }
                    out.push_str("  end\n");
                }
                for w in 1..env.stages.len() {
                    let _ = writeln!(out, "  stage{} --> stage{w}", w - 1);
                }
                for (i, s) in env.services.iter().enumerate() {
                    for d in self.dependencies(i) {
                        let _ = writeln!(
                            out,
                            "  {} -.->|depends on| {}",
                            mermaid_id(&s.name),
                            mermaid_id(&env.services[d].name)
                        );
                    }
                }
            }
        }
        out
    }
}

fn mermaid_id(name: &str) -> String {
    format!("svc_{}", name.replace('-', "_"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphFormat {
    #[default]
    Text,
    Dot,
    Mermaid,
}
