/*
 * list.h: intrusive circular doubly linked lists (the state lists of pools).
 * Header-only; owns no memory. An element is on at most one list through one node.
 */
#ifndef PGUSHER_LIST_H
#define PGUSHER_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
    struct list *next, *prev;
};

#define LIST_INIT(name)                                                                            \
    {                                                                                              \
        &(name), &(name)                                                                           \
    }
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list *l)
{
    l->next = l->prev = l;
}

static inline bool list_empty(const struct list *l)
{
    return l->next == l;
}

static inline void list_append(struct list *head, struct list *item)
{
    item->prev = head->prev;
    item->next = head;
    head->prev->next = item;
    head->prev = item;
}

static inline void list_prepend(struct list *head, struct list *item)
{
    item->next = head->next;
    item->prev = head;
    head->next->prev = item;
    head->next = item;
}

/* Insert item just before pos (pos may be the head: then at the end). */
static inline void list_insert_before(struct list *pos, struct list *item)
{
    item->prev = pos->prev;
    item->next = pos;
    pos->prev->next = item;
    pos->prev = item;
}

static inline void list_del(struct list *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    item->next = item->prev = item;
}

static inline struct list *list_first(struct list *head)
{
    return list_empty(head) ? NULL : head->next;
}

static inline size_t list_count(const struct list *head)
{
    size_t n = 0;
    for (const struct list *p = head->next; p != head; p = p->next)
        n++;
    return n;
}

#define list_for_each(pos, head) for (pos = (head)->next; pos != (head); pos = pos->next)
#define list_for_each_safe(pos, tmp, head)                                                         \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
