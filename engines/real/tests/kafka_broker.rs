//! streamlab's own Kafka broker end to end: formatted and started in a directory on loopback,
//! the run's topics created with the workload's partition count, a small workload produced
//! open-loop and read back with the run clock, and nothing of the broker left afterwards.
//!
//! Needs the pinned Kafka (`streamlab engines install`). Without it the test says it is skipped
//! and why, and passes; with `STREAMLAB_REQUIRE_REAL_ENGINES=1` (CI) a missing install fails it.

use std::time::{Duration, Instant};

use streamlab_engines::event::{Event, EventKind};
use streamlab_real_engines::groups::group_alive;
use streamlab_real_engines::kafka::consumer::OutputConsumer;
use streamlab_real_engines::kafka::dist::installed_for_test;
use streamlab_real_engines::kafka::producer::{ScheduleProducer, END_OF_STREAM};
use streamlab_real_engines::kafka::{KafkaCluster, RunTopics};
use streamlab_workloads::feeder::RunClock;

fn events(n: u64, partitions: u32) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            seq: i,
            event_time: 1_000 + i as i64 * 10,
            arrival: i * 10_000_000,
            partition: (i % partitions as u64) as u32,
            user: i as u32 % 7,
            session: 1,
            page: 2,
            ad: 3,
            kind: EventKind::Click,
            dwell_ms: 4,
            price_cents: 5,
        })
        .collect()
}

#[test]
fn a_broker_of_our_own_carries_the_workload_on_schedule_and_leaves_nothing_behind() {
    let Some(dist) = installed_for_test("kafka_broker") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = KafkaCluster::start(None, &dist, &tmp.path().join("kafka")).unwrap();
    let KafkaCluster::Owned(broker) = &cluster else {
        unreachable!("no bootstrap_servers given")
    };
    let group = broker.group_id();
    assert!(group_alive(group));
    assert!(cluster.bootstrap().starts_with("127.0.0.1:"), "{}", cluster.bootstrap());
    let topics = RunTopics::named("broker test", 2);
    cluster.create_topics(&topics).unwrap();
    cluster.create_topics(&topics).unwrap(); // kept: same partition count

    let events = events(40, 2);
    let clock = RunClock::new(0);
    // Reading the input topic itself: the records are exactly what an engine would read.
    let consumer = OutputConsumer::start(&cluster.bootstrap(), &topics.input, 2, clock.clone()).unwrap();
    let producer = ScheduleProducer::start(&cluster.bootstrap(), &topics.input, &events, 2, clock.clone()).unwrap();
    assert!(clock.is_started(), "the schedule starts once every partition is open");
    let report = producer.wait().unwrap();
    assert_eq!(report.events_sent, 40);
    let deadline = Instant::now() + Duration::from_secs(10);
    while consumer.received() < 42 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let consumed = consumer.stop().unwrap();
    assert_eq!(
        (consumed.aborted, consumed.pending),
        (0, 0),
        "the producer is not transactional"
    );
    let lines = consumed.lines;
    assert_eq!(lines.len(), 42, "40 events and one end marker per partition");
    assert_eq!(lines.iter().filter(|l| l.text == END_OF_STREAM).count(), 2);
    let first = lines.iter().find(|l| l.text.starts_with("0,")).unwrap();
    assert_eq!(first.text, "0,1000,0,0,0,1,2,3,click,4,5");
    // Open loop: no record is received before its scheduled arrival.
    for line in lines.iter().filter(|l| l.text != END_OF_STREAM) {
        let seq: u64 = line.text.split(',').next().unwrap().parse().unwrap();
        assert!(line.stamp >= events[seq as usize].arrival, "{line:?}");
    }
    assert!(
        lines.windows(2).all(|w| w[0].stamp <= w[1].stamp),
        "stamps are non-decreasing"
    );

    drop(cluster);
    assert!(!group_alive(group), "the broker's process group is gone");
}
