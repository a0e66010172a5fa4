//! DescribeLogDirs: the one log directory, its partitions' sizes, and the
//! file system's total and usable bytes.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

fn fs_space(path: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return (-1, -1) };
    // SAFETY: `c` is a valid NUL-terminated path and `st` is a plain-old-data
    // struct that statvfs fully initialises when it returns 0; on failure
    // we do not read it.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return (-1, -1);
        }
        ((st.f_blocks as i64) * (st.f_frsize as i64), (st.f_bavail as i64) * (st.f_frsize as i64))
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: DescribeLogDirsRequest,
) -> Result<DescribeLogDirsResponse, BrokerError> {
    let logs = broker.topics.logs().clone();
    let image = broker.topics.image();
    let wanted: Vec<(String, Vec<i32>)> = match req.topics {
        Some(ts) => ts.into_iter().map(|t| (t.topic.to_string(), t.partitions)).collect(),
        None => image.topics().map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect())).collect(),
    };
    let mut dir = DescribeLogDirsResult::default();
    dir.log_dir = StrBytes::from_string(logs.dir().display().to_string());
    let (total, usable) = fs_space(logs.dir());
    dir.total_bytes = total;
    dir.usable_bytes = usable;
    for (name, parts) in wanted {
        let mut t = DescribeLogDirsTopic::default();
        t.name = TopicName(StrBytes::from_string(name.clone()));
        for p in parts {
            if let Some(log) = broker.topics.log(&name, p) {
                let mut dp = DescribeLogDirsPartition::default();
                dp.partition_index = p;
                dp.partition_size = log.size_bytes() as i64;
                dp.offset_lag = 0;
                t.partitions.push(dp);
            }
        }
        if !t.partitions.is_empty() {
            dir.topics.push(t);
        }
    }
    let mut resp = DescribeLogDirsResponse::default();
    resp.results.push(dir);
    Ok(resp)
}

crate::route_to!(DescribeLogDirs, handle);
