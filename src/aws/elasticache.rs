//! ElastiCache: the cache whose read replicas scale with the functions.

use aws_sdk_elasticache::types::{NodeGroup, ReplicationGroup as AwsGroup};

use super::{AwsCloud, classify};
use crate::cloud::{CloudError, ReplicationGroup};

impl AwsCloud {
    pub(super) async fn describe_replication_group(
        &self,
        id: &str,
    ) -> Result<ReplicationGroup, CloudError> {
        const ACTION: &str = "elasticache:DescribeReplicationGroups";
        let what = || format!("ElastiCache replication group `{id}`");
        let result = self
            .elasticache
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .await
            .map_err(|e| classify(ACTION, &self.region, what, e))
            .and_then(|out| {
                out.replication_groups()
                    .first()
                    .map(|g| ReplicationGroup {
                        id: g.replication_group_id().unwrap_or(id).to_owned(),
                        status: g.status().unwrap_or_default().to_owned(),
                        replicas: g.node_groups().first().map(replicas).unwrap_or(0),
                        members: members(g),
                    })
                    .ok_or_else(|| CloudError::NotFound {
                        what: what(),
                        region: self.region.clone(),
                    })
            });
        self.observe(ACTION, &result);
        result
    }
}

/// The group's nodes: `MemberClusters`, else (an answer without it) the
/// members of its node groups, in order and once each.
fn members(g: &AwsGroup) -> Vec<String> {
    let mut ids: Vec<String> = g.member_clusters().to_vec();
    if ids.is_empty() {
        for m in g.node_groups().iter().flat_map(|n| n.node_group_members()) {
            if let Some(id) = m.cache_cluster_id()
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

/// AWS reports each member's role only for cluster-mode-disabled groups;
/// a cluster-mode shard has exactly one primary, so there the replicas
/// are all members but one.
fn replicas(shard: &NodeGroup) -> i32 {
    let members = shard.node_group_members();
    let count = if members.iter().any(|m| m.current_role().is_some()) {
        members
            .iter()
            .filter(|m| m.current_role() == Some("replica"))
            .count()
    } else {
        members.len().saturating_sub(1)
    };
    i32::try_from(count).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticache::types::{NodeGroup, NodeGroupMember};

    use super::{members, replicas};

    fn member(role: Option<&str>) -> NodeGroupMember {
        NodeGroupMember::builder()
            .cache_cluster_id("matbakh-redis-0001-001")
            .set_current_role(role.map(str::to_owned))
            .build()
    }

    #[test]
    fn replicas_are_members_that_are_not_primary() {
        let disabled = NodeGroup::builder()
            .node_group_members(member(Some("primary")))
            .node_group_members(member(Some("replica")))
            .node_group_members(member(Some("replica")))
            .build();
        assert_eq!(replicas(&disabled), 2);
        let cluster_mode = NodeGroup::builder()
            .node_group_members(member(None))
            .node_group_members(member(None))
            .build();
        assert_eq!(replicas(&cluster_mode), 1);
        assert_eq!(replicas(&NodeGroup::builder().build()), 0);
    }

    #[test]
    fn members_are_read_not_guessed() {
        use aws_sdk_elasticache::types::ReplicationGroup;
        let listed = ReplicationGroup::builder()
            .member_clusters("matbakh-redis-0001-001")
            .member_clusters("matbakh-redis-0001-002")
            .build();
        assert_eq!(
            members(&listed),
            ["matbakh-redis-0001-001", "matbakh-redis-0001-002"]
        );
        // Without MemberClusters, the node groups' members, once each.
        let shard = NodeGroup::builder()
            .node_group_members(member(None))
            .node_group_members(member(None))
            .build();
        let from_shards = ReplicationGroup::builder().node_groups(shard).build();
        assert_eq!(members(&from_shards), ["matbakh-redis-0001-001"]);
    }
}
